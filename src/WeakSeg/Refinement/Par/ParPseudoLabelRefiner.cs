using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.PseudoLabels;
using static TorchSharp.torch;

namespace WeakSeg.Refinement.Par;

/// <summary>
/// Pseudo labels refined by PAR (ToCo's pixel-adaptive refinement, <see cref="PixelAdaptiveRefinement"/>) instead of taken from the
/// raw maps: the image (RGB / 255) and the stack [background = threshold; maps] (softmaxed over its planes) go through PAR, optionally at
/// 1/<see cref="DownScale"/> of the image, and the refined stack is argmaxed (<see cref="ParLabels"/>). With an uncertain band
/// [LOW, HIGH) the two stacks [HIGH; maps] and [LOW; maps] are refined as ToCo's training labels: a pixel is the high stack's class,
/// uncertain (255) where the high stack says background but the low one does not, background where both do. Images come from the
/// VOC-layout dataset at <paramref name="dataRoot"/>; one image at a time (libtorch uses the cores itself).
/// </summary>
public sealed class ParPseudoLabelRefiner(string dataRoot, ParConfig? config = null, int downScale = 1) : IPseudoLabelRefiner
{
    readonly VocLayout _layout = new(dataRoot);
    readonly PixelAdaptiveRefinement _par = new(config);

    /// <summary>PAR runs at 1/DownScale of the image size (1 = full resolution; ToCo's training labels use 2).</summary>
    public int DownScale { get; } = downScale >= 1 ? downScale : throw new WeakSegException($"--par-down-scale must be ≥ 1 (got {downScale})");

    public string Description => $"PAR ({_par.Config.Iterations} iterations, dilations {string.Join(",", _par.Config.Dilations)}, w1 {_par.Config.W1}, w2 {_par.Config.W2}, 1/{DownScale} scale)";

    public int MaxParallelism => 1;

    public LabelMap Label(CamMaps maps, PseudoLabelConfig config)
    {
        var imagePath = _layout.ImagePath(maps.Name);
        var image = ImageCodec.Load(imagePath);                                 // names the file when it is missing or unreadable
        try { return Label(image, maps, config.Threshold, config.Uncertain); }
        catch (WeakSegException e) { throw WeakSegException.ForFile(imagePath, e.Message); }
    }

    /// <summary>The PAR-refined label map of <paramref name="maps"/> on <paramref name="image"/> (same size).</summary>
    public LabelMap Label(RgbImage image, CamMaps maps, double threshold, UncertainBand? band)
    {
        if (image.Width != maps.Width || image.Height != maps.Height)
            throw new WeakSegException($"{maps.Name}: image is {image.Width}×{image.Height} but its maps are {maps.Width}×{maps.Height}");
        int h = maps.Height, w = maps.Width, k = maps.Classes.Length;
        if (k == 0) return new LabelMap(w, h, new byte[h * w]);                                 // no class: all background
        using var scope = torch.NewDisposeScope();
        var rgb = torch.tensor(image.Pixels, new long[] { h, w, 3 }, dtype: ScalarType.Byte);
        using var divisor = 255.0.ToScalar();
        var image01 = rgb.permute(2, 0, 1).unsqueeze(0).to_type(ScalarType.Float32).div_(divisor);
        var mapTensor = torch.tensor(maps.Maps, new long[] { 1, k, h, w });
        Tensor index;
        if (band is { } b)
        {
            var levels = ParLabels.ArgmaxPerLevel(_par, image01, mapTensor, [b.High, b.Low], DownScale);
            index = ParLabels.CombineLevels(levels[0], levels[1], LabelMap.Ignore);
        }
        else index = ParLabels.ArgmaxPerLevel(_par, image01, mapTensor, [threshold], DownScale)[0];
        var planes = index.flatten().to_type(ScalarType.Int64).data<long>().ToArray();
        var labels = new byte[planes.Length];
        for (int i = 0; i < planes.Length; i++)
            labels[i] = planes[i] == LabelMap.Ignore ? LabelMap.Ignore : planes[i] == 0 ? (byte)0 : (byte)maps.Classes[planes[i] - 1];
        return new LabelMap(w, h, labels);
    }
}
