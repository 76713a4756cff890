using TorchSharp;
using WeakSeg.Methods.ToCo;
using WeakSeg.Models;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.MoRe;

/// <summary>MoRe's CAM and LAM maps (utils/camutils.py multi_scale_cam2, multi_scale_lam2), pure functions.</summary>
public static class MoReMaps
{
    /// <summary><see cref="StepTimings"/> section of <see cref="MultiScaleLam"/> (in training: the LAM of the LAM label source).</summary>
    public const string LamSection = "multi-scale LAM";

    /// <summary>Multi-scale + flip CAM and aux CAM, exactly as <see cref="ToCoMaps.MultiScaleCam(Func{Tensor, ValueTuple{Tensor, Tensor}}, Tensor, IReadOnlyList{double})"/>.</summary>
    public static (Tensor Cam, Tensor AuxCam) MultiScaleCam(MoReNetwork network, Tensor inputs, IReadOnlyList<double> scales) =>
        ToCoMaps.MultiScaleCam(network.CamOnly, inputs, scales);

    /// <summary>
    /// LAM at the patch grid: the raw dot products of the final patch tokens with the (GCR) class tokens,
    /// einsum(fmap [B, D, h, w], tokens [B, C, D]) → [B, C, h, w]. No ReLU, no normalisation.
    /// </summary>
    public static Tensor LocalizationMap(Tensor featureMap, Tensor classTokens) => torch.einsum("bchw,bkc->bkhw", featureMap, classTokens);

    /// <summary>
    /// Multi-scale + flip LAM (multi_scale_lam2): scale 1 first, then each other scale s (input resized bilinearly to
    /// (int(s·H), int(s·W))); per scale the image and its flip go through the full forward (with GCR unless
    /// <see cref="MoReConfig.UseGcr"/> is off), the LAM is resized
    /// bilinearly to (H, W) and the max of it and the flipped-back flip LAM is kept (no ReLU); scales are summed and each
    /// (image, class) map is min-max normalised (x −= min; x /= max + 1e-5). No grad; the network's mode is unchanged.
    /// inputs [B, 3, H, W] → [B, C, H, W].
    /// </summary>
    public static Tensor MultiScaleLam(MoReNetwork network, Tensor inputs, IReadOnlyList<double> scales)
    {
        if (inputs.dim() != 4) throw new WeakSegException($"LAM inputs must be [B, 3, H, W]; got [{string.Join(", ", inputs.shape)}]");
        foreach (var s in scales)
            if (!(s > 0) || double.IsInfinity(s)) throw new WeakSegException($"LAM scales must be positive numbers (got {s})");
        using var timing = StepTimings.Section(LamSection);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        long b = inputs.shape[0], h = inputs.shape[2], w = inputs.shape[3];
        Tensor? sum = null;
        foreach (var scale in new[] { 1.0 }.Concat(scales.Where(s => s != 1.0)))
        {
            var scaled = scale == 1.0 ? inputs
                : nn.functional.interpolate(inputs, size: new[] { (long)(scale * h), (long)(scale * w) }, mode: InterpolationMode.Bilinear, align_corners: false);
            using var output = network.forward(torch.cat(new[] { scaled, scaled.flip(-1) }, 0));
            var lam = LocalizationMap(output.FeatureMap, output.AttributeTokens);
            var resized = nn.functional.interpolate(lam, size: new[] { h, w }, mode: InterpolationMode.Bilinear, align_corners: false);
            var view = torch.maximum(resized.narrow(0, 0, b), resized.narrow(0, b, b).flip(-1));
            sum = sum is null ? view : StableScalars.Add(sum, view);
        }
        return ToCoMaps.MinMaxNormalize(sum!).MoveToOuterDisposeScope();
    }
}
