using TorchSharp;
using WeakSeg.Training;
using WeakSeg.Models;
using static TorchSharp.torch;

namespace WeakSeg.Methods.ToCo;

/// <summary>ToCo's in-training and validation CAMs (utils/camutils.py multi_scale_cam2), pure functions.</summary>
public static class ToCoMaps
{
    /// <summary><see cref="StepTimings"/> section of <see cref="MultiScaleCam(Func{Tensor, ValueTuple{Tensor, Tensor}}, Tensor, IReadOnlyList{double})"/>
    /// (in training: the step's multi-scale + flip CAM).</summary>
    public const string CamSection = "multi-scale CAM";

    /// <summary>
    /// Multi-scale + flip CAM and aux CAM of a batch, as multi_scale_cam2: scale 1 is always computed first, then each other
    /// scale s (input resized bilinearly to (int(s·H), int(s·W))). Per scale the image and its horizontal flip go through
    /// <see cref="ToCoNetwork.CamOnly"/> as one batch, both CAMs are resized bilinearly to (H, W), the max of the CAM and the
    /// flipped-back flip CAM is taken, then ReLU; scales are summed; finally per (image, class): cam −= min; cam /= max + 1e-5.
    /// Runs under no_grad without changing the network's mode. inputs [B, 3, H, W] → (cam, aux cam) [B, C, H, W].
    /// </summary>
    public static (Tensor Cam, Tensor AuxCam) MultiScaleCam(ToCoNetwork network, Tensor inputs, IReadOnlyList<double> scales) =>
        MultiScaleCam(network.CamOnly, inputs, scales);

    /// <summary>The same protocol for any network's cam-only pass: views [2B, 3, h, w] → (cam, aux cam) at the patch grid.</summary>
    public static (Tensor Cam, Tensor AuxCam) MultiScaleCam(Func<Tensor, (Tensor Cam, Tensor AuxCam)> camOnly, Tensor inputs, IReadOnlyList<double> scales)
    {
        if (inputs.dim() != 4) throw new WeakSegException($"CAM inputs must be [B, 3, H, W]; got [{string.Join(", ", inputs.shape)}]");
        foreach (var s in scales)
            if (!(s > 0) || double.IsInfinity(s)) throw new WeakSegException($"CAM scales must be positive numbers (got {s})");
        using var timing = StepTimings.Section(CamSection);
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        long b = inputs.shape[0], h = inputs.shape[2], w = inputs.shape[3];
        Tensor? camSum = null, auxSum = null;
        foreach (var scale in new[] { 1.0 }.Concat(scales.Where(s => s != 1.0)))
        {
            var scaled = scale == 1.0 ? inputs
                : nn.functional.interpolate(inputs, size: new[] { (long)(scale * h), (long)(scale * w) }, mode: InterpolationMode.Bilinear, align_corners: false);
            var batch = torch.cat(new[] { scaled, scaled.flip(-1) }, 0);
            var (cam, auxCam) = camOnly(batch);
            var camView = FlipMax(cam, b, h, w);
            var auxView = FlipMax(auxCam, b, h, w);
            camSum = camSum is null ? camView : StableScalars.Add(camSum, camView);
            auxSum = auxSum is null ? auxView : StableScalars.Add(auxSum, auxView);
        }
        return (MinMaxNormalize(camSum!).MoveToOuterDisposeScope(), MinMaxNormalize(auxSum!).MoveToOuterDisposeScope());
    }

    /// <summary>[2B, C, h, w] (images then flips) → ReLU(max(cam, flip-back(flip cam))) resized to (H, W): [B, C, H, W].</summary>
    static Tensor FlipMax(Tensor cams, long b, long h, long w)
    {
        var resized = nn.functional.interpolate(cams, size: new[] { h, w }, mode: InterpolationMode.Bilinear, align_corners: false);
        return torch.maximum(resized.narrow(0, 0, b), resized.narrow(0, b, b).flip(-1)).relu();
    }

    /// <summary>Scales of ToCo's final segmentation inference (tools/infer_seg_voc.py): 1.0, 1.5, 1.25 of the original image size.</summary>
    public static IReadOnlyList<double> SegmentationScales { get; } = [1.0, 1.5, 1.25];

    /// <summary>
    /// The decoder's class probabilities by ToCo's inference (tools/infer_seg_voc.py): per scale s the image is resized bilinearly to
    /// (int(s·H), int(s·W)), the image and its horizontal flip go through <paramref name="segmentationLogits"/> as one batch, both
    /// logit maps are resized bilinearly to (H, W) and summed (the flip flipped back); the maximum over scales is softmaxed over the
    /// classes. Without <paramref name="flip"/> the flipped view is left out. Runs under no_grad.
    /// images [1, 3, H, W] → [1, K + 1, H, W].
    /// </summary>
    public static Tensor MultiScaleSegmentation(Func<Tensor, Tensor> segmentationLogits, Tensor images, IReadOnlyList<double> scales, bool flip = true)
    {
        if (images.dim() != 4) throw new WeakSegException($"segmentation inputs must be [B, 3, H, W]; got [{string.Join(", ", images.shape)}]");
        if (scales.Count == 0) throw new WeakSegException("segmentation scales must not be empty");
        foreach (var s in scales)
            if (!(s > 0) || double.IsInfinity(s)) throw new WeakSegException($"segmentation scales must be positive numbers (got {s})");
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        long b = images.shape[0], h = images.shape[2], w = images.shape[3];
        Tensor? best = null;
        foreach (var scale in scales)
        {
            var scaled = scale == 1.0 ? images
                : nn.functional.interpolate(images, size: new[] { Math.Max(1, (long)(scale * h)), Math.Max(1, (long)(scale * w)) }, mode: InterpolationMode.Bilinear, align_corners: false);
            var batch = flip ? torch.cat(new[] { scaled, scaled.flip(-1) }, 0) : scaled;
            var logits = nn.functional.interpolate(segmentationLogits(batch), size: new[] { h, w }, mode: InterpolationMode.Bilinear, align_corners: false);
            var summed = flip ? logits.narrow(0, 0, b).add(logits.narrow(0, b, b).flip(-1)) : logits;
            best = best is null ? summed : torch.maximum(best, summed);
        }
        return best!.softmax(1).MoveToOuterDisposeScope();
    }

    /// <summary>Per (image, channel): x −= min; x /= max + 1e-5. [B, C, H, W] → [B, C, H, W].</summary>
    public static Tensor MinMaxNormalize(Tensor maps)
    {
        using var scope = torch.NewDisposeScope();
        using var eps = 1e-5.ToScalar();
        var min = maps.amin(new long[] { 2, 3 }, keepdim: true);
        var shifted = maps.sub(min);
        var max = shifted.amax(new long[] { 2, 3 }, keepdim: true);
        return shifted.div(max.add(eps)).MoveToOuterDisposeScope();
    }
}
