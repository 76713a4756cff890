using TorchSharp;
using WeakSeg.Data;
using static TorchSharp.torch;

namespace WeakSeg.Segmentation;

/// <summary>
/// Dense-CRF (or any) refinement hook: (image, probabilities [C·H·W] row-major per class, C) → refined probabilities of the same layout.
/// </summary>
public delegate float[] ProbabilityRefiner(RgbImage image, float[] probabilities, int numClasses);

/// <summary>How <see cref="SegmentationPredictor"/> predicts.</summary>
public sealed record SegmentationInferenceOptions
{
    /// <summary>Image scales (each resized with an antialiased bilinear filter, then sliding windows).</summary>
    public IReadOnlyList<double> Scales { get; init; } = [1.0];

    /// <summary>Also predict the horizontally flipped image and flip the result back.</summary>
    public bool Flip { get; init; } = true;

    /// <summary>Optional post-processing of the averaged probabilities (the dense CRF), applied before the argmax.</summary>
    public ProbabilityRefiner? Refine { get; init; }

    /// <summary>Windows run through the network at once (windows of the image and of its flip are batched together).</summary>
    public int WindowBatch { get; init; } = 8;

    /// <summary>Rewrite predictions that already exist (default: skip them, so an interrupted run resumes).</summary>
    public bool Overwrite { get; init; }
}

/// <summary>Anything that turns an image into a label map under <see cref="SegmentationInferenceOptions"/> (a retrained segmenter, or a
/// single-stage method's own decoder); <see cref="SegmentationInference.Run"/> writes a split's predictions with it.</summary>
public interface ILabelPredictor
{
    LabelMap Predict(RgbImage image, SegmentationInferenceOptions options);
}

/// <summary>
/// Multi-scale + flip sliding-window inference of a <see cref="SegmentationNetwork"/>: for every scale s and flip f the image is resized
/// to (round(H·s), round(W·s)), ImageNet-normalised, run through <see cref="SlidingWindow.Logits"/> with window = crop size and stride
/// = <see cref="SegmentationConfig.WindowStride"/>, the averaged logits are bilinearly resized to H×W, softmaxed, flipped back, and
/// the probabilities are averaged over all (s, f). Optional refinement (CRF), then argmax.
/// </summary>
public sealed class SegmentationPredictor : ILabelPredictor
{
    readonly SegmentationNetwork _model;
    readonly Device _device;

    public SegmentationPredictor(SegmentationNetwork model, Device device)
    {
        _model = model;
        _device = device;
    }

    public int NumOutputClasses => _model.NumOutputClasses;

    /// <summary>Class probabilities [C, H, W] (C = K + 1) of <paramref name="image"/>, averaged over scales and flips.</summary>
    public float[] Probabilities(RgbImage image, SegmentationInferenceOptions options)
    {
        if (options.Scales.Count == 0 || options.Scales.Any(s => !(s > 0))) throw new WeakSegException("inference scales must be a non-empty list of positive numbers");
        var config = _model.Config;
        _model.eval();
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        Tensor? total = null;
        int passes = 0;
        foreach (var scale in options.Scales)
        {
            using var passScope = torch.NewDisposeScope();
            int h = Math.Max(1, (int)Math.Round(image.Height * scale)), w = Math.Max(1, (int)Math.Round(image.Width * scale));
            var transform = new EvalTransform { Width = w, Height = h };
            // the image and its mirror image go through the network together (one batch): half the forward calls
            var views = (options.Flip ? new[] { false, true } : new[] { false }).Select(flip => transform.Apply(image, flip)).ToArray();
            int th = views[0].Height, tw = views[0].Width;
            var chw = new float[views.Length * views[0].Chw.Length];
            for (int v = 0; v < views.Length; v++) views[v].Chw.CopyTo(chw, v * views[0].Chw.Length);
            var input = torch.tensor(chw, new long[] { views.Length, 3, th, tw }, dtype: ScalarType.Float32, device: _device);
            var logits = SlidingWindow.Logits(input, config.CropSize, config.WindowStride, batch => _model.call(batch), options.WindowBatch);
            if (th != image.Height || tw != image.Width)
                logits = nn.functional.interpolate(logits, size: new long[] { image.Height, image.Width }, mode: InterpolationMode.Bilinear, align_corners: false);
            var probs = logits.softmax(1);                                                       // [V, C, H, W]
            var sum = probs.narrow(0, 0, 1);
            if (views.Length == 2) sum = sum.add(probs.narrow(0, 1, 1).flip(3));
            if (total is null) total = sum.MoveToOuterDisposeScope();
            else total.add_(sum);
            passes += views.Length;
        }
        var mean = total!.div(passes).squeeze(0).cpu().contiguous();
        return mean.data<float>().ToArray();
    }

    /// <summary>The label map of <paramref name="image"/>: argmax over classes of the (refined) probabilities.</summary>
    public LabelMap Predict(RgbImage image, SegmentationInferenceOptions options) =>
        RefineAndArgmax(image, Probabilities(image, options), NumOutputClasses, options);

    /// <summary>The optional refinement of <paramref name="options"/> (CRF) on probabilities [C, H, W], then the per-pixel argmax.</summary>
    public static LabelMap RefineAndArgmax(RgbImage image, float[] probs, int c, SegmentationInferenceOptions options)
    {
        int plane = image.Width * image.Height;
        if (probs.Length != c * plane) throw new WeakSegException($"{probs.Length} probabilities do not match {c}×{image.Height}×{image.Width}");
        if (options.Refine is { } refine)
        {
            probs = refine(image, probs, c);
            if (probs.Length != c * plane) throw new WeakSegException($"the refinement returned {probs.Length} values, expected {c}×{image.Height}×{image.Width}");
        }
        return Argmax(probs, c, image.Width, image.Height);
    }

    /// <summary>Per-pixel argmax of [C, H, W] probabilities (first class wins ties).</summary>
    public static LabelMap Argmax(float[] probs, int numClasses, int width, int height)
    {
        int plane = width * height;
        var labels = new byte[plane];
        for (int p = 0; p < plane; p++)
        {
            int best = 0;
            float bestValue = probs[p];
            for (int k = 1; k < numClasses; k++)
            {
                float v = probs[k * plane + p];
                if (v > bestValue) { bestValue = v; best = k; }
            }
            labels[p] = (byte)best;
        }
        return new LabelMap(width, height, labels);
    }
}

/// <summary>Ready-made <see cref="ProbabilityRefiner"/>s.</summary>
public static class SegmentationRefiners
{
    /// <summary>
    /// The native dense CRF (<see cref="WeakSeg.Refinement.DenseCrf.Refine"/>) on the image's RGB bytes and the averaged softmax probabilities:
    /// unary −log p, Gaussian + bilateral Potts kernels of <paramref name="config"/> (WeakTr post-processes with the MCTformer/PSA segmentation
    /// CRF: <see cref="WeakSeg.Refinement.DenseCrfConfig.MctFormerSeg"/>). Returns the CRF's marginals, same [C, H, W] layout.
    /// </summary>
    public static ProbabilityRefiner DenseCrf(WeakSeg.Refinement.DenseCrfConfig config) => (image, probabilities, numClasses) =>
    {
        if (probabilities.Length != numClasses * image.Width * image.Height)
            throw new WeakSegException($"dense CRF: {probabilities.Length} probabilities do not match {numClasses}×{image.Height}×{image.Width}");
        return WeakSeg.Refinement.DenseCrf.Refine(image.Pixels, image.Width, image.Height, probabilities, config).Probabilities;
    };
}
