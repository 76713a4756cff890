using TorchSharp;
using WeakSeg.Methods.MctFormer;
using static TorchSharp.torch;

namespace WeakSeg.Methods.WeakTr;

/// <summary>Which WeakTr map inference accumulates.</summary>
public enum WeakTrMapKind
{
    /// <summary>ReLU(fine CAM), eq. 6: the method's CAM.</summary>
    Fine,

    /// <summary>ReLU(coarse CAM) of the conv head (ablation / visualisation, paper Fig. 9).</summary>
    Coarse,

    /// <summary>ĈA, the fused class-to-patch attention (visualisation, paper Fig. 9).</summary>
    CrossAttention,
}

/// <summary>Options of <see cref="WeakTrInference"/>. The paper uses "the multi-scale strategy" without listing scales (unverified).</summary>
public sealed record WeakTrInferenceOptions
{
    /// <summary>Input scales; each scaled side is rounded to a multiple of the patch size.</summary>
    public IReadOnlyList<double> Scales { get; init; } = new[] { 1.0 };

    /// <summary>Also run the horizontally flipped image and add its (un-flipped) maps.</summary>
    public bool Flip { get; init; } = true;

    public WeakTrMapKind MapKind { get; init; } = WeakTrMapKind.Fine;
}

/// <summary>Image-level WeakTr localization maps: multi-scale + flip accumulation, per-class max normalisation, class selection.</summary>
public static class WeakTrInference
{
    /// <summary>The chosen map of one forward pass on the patch grid. images [B, 3, H, W] → [B, C, h, w].</summary>
    public static Tensor MapsAtPatchGrid(WeakTrModel model, Tensor images, WeakTrMapKind kind)
    {
        using var output = model.Forward(images);
        return kind switch
        {
            WeakTrMapKind.Fine => output.FineCam.relu(),
            WeakTrMapKind.Coarse => output.CoarseCam.relu(),
            WeakTrMapKind.CrossAttention => output.CrossAttention.clone(),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
    }

    /// <summary>
    /// Sum over scales (and flips) of the chosen map, each bilinearly resized to the image size. image [3, H, W] or [1, 3, H, W]
    /// (normalised as for training) → [C, H, W], not normalised. Runs under no_grad with the model in eval mode.
    /// </summary>
    public static Tensor AccumulatedMaps(WeakTrModel model, Tensor image, WeakTrInferenceOptions? options = null)
    {
        options ??= new WeakTrInferenceOptions();
        return MultiScaleCam.Accumulate(model, model.PatchSize, image, options.Scales, options.Flip,
            view => MapsAtPatchGrid(model, view, options.MapKind));
    }

    /// <summary>
    /// Accumulated maps of the image's classes, each divided by its maximum: [K', H, W] in the order of <paramref name="classes"/>.
    /// Class indices are 0-based columns of the label vector (foreground class c of the dataset is index c − 1).
    /// </summary>
    public static Tensor LocalizeImage(WeakTrModel model, Tensor image, IReadOnlyList<int> classes, WeakTrInferenceOptions? options = null)
    {
        using var scope = torch.NewDisposeScope();
        var maps = AccumulatedMaps(model, image, options);
        return MctFormerInference.NormalizePerClass(MctFormerInference.SelectClasses(maps, classes)).MoveToOuterDisposeScope();
    }
}
