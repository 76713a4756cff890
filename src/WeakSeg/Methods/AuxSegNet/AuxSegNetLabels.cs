using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Methods.AuxSegNet;

/// <summary>
/// AuxSegNet's pseudo labels (official tool/imutils.py: fusion_cam; gen_pgt.py). Labels: 0 background, c + 1 for foreground class c,
/// <see cref="Ignore"/> where CAM and saliency disagree.
/// </summary>
public static class AuxSegNetLabels
{
    public const long Ignore = 255;

    /// <summary>
    /// The fusion rule. cam [B, K, H, W] (ReLU'd and max-normalised foreground CAM), saliency [B, H, W] or [B, 1, H, W] in [0, 1],
    /// labels [B, K] multi-hot → [B, H, W] int64. The CAM is multiplied by the labels; a pixel is object where max_c CAM &gt;
    /// <paramref name="camThreshold"/> and saliency &gt; <paramref name="saliencyThreshold"/> (both strict, in float32 as the reference
    /// compares: a value equal to float32(0.2) is not above 0.2) and gets argmax_c + 1 (ties: the first class); background (0) where
    /// neither holds; <see cref="Ignore"/> where exactly one holds.
    /// </summary>
    public static Tensor Fuse(Tensor cam, Tensor saliency, Tensor labels, double camThreshold = 0.2, double saliencyThreshold = 0.06)
    {
        if (cam.dim() != 4) throw new WeakSegException($"fusion: CAM must be [B, K, H, W]; got [{string.Join(", ", cam.shape)}]");
        using var scope = torch.NewDisposeScope();
        var sal = saliency.dim() == 4 ? saliency.squeeze(1) : saliency;
        if (sal.dim() != 3 || sal.shape[0] != cam.shape[0] || sal.shape[1] != cam.shape[2] || sal.shape[2] != cam.shape[3])
            throw new WeakSegException($"fusion: saliency [{string.Join(", ", saliency.shape)}] does not match the CAM [{string.Join(", ", cam.shape)}]");
        var masked = cam.to_type(ScalarType.Float32).mul(labels.to_type(ScalarType.Float32).unsqueeze(2).unsqueeze(3));
        var (top, index) = masked.max(1);
        var camFires = top.gt(torch.tensor((float)camThreshold));
        var salFires = sal.to_type(ScalarType.Float32).gt(torch.tensor((float)saliencyThreshold));
        var label = torch.full_like(index, Ignore);
        label = torch.where(camFires.logical_and(salFires), index.add(1), label);
        label = torch.where(camFires.logical_or(salFires).logical_not(), torch.zeros_like(index), label);
        return label.MoveToOuterDisposeScope();
    }

    /// <summary>The reference's CAM normalisation before fusion: ReLU, then each class map divided by its maximum (+1e-5) → [B, K, h, w].</summary>
    public static Tensor NormalizeCam(Tensor cam)
    {
        using var scope = torch.NewDisposeScope();
        var positive = torch.nn.functional.relu(cam);
        return positive.div(positive.amax([2, 3], keepdim: true).add(1e-5)).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The label update after a round (gen_pgt.py): the normalised CAM propagated once by the learned cross-task affinity
    /// (A_ct · vec(CAM), no power), bilinearly resized to <paramref name="height"/>×<paramref name="width"/>. cam [B, K, h, w], affinity [B, N, N].
    /// </summary>
    public static Tensor RefineCam(Tensor cam, Tensor affinity, long height, long width)
    {
        using var scope = torch.NewDisposeScope();
        var refined = AuxSegNetAffinity.Propagate(affinity, NormalizeCam(cam));
        return torch.nn.functional.interpolate(refined, [height, width], mode: InterpolationMode.Bilinear, align_corners: false).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// New labels after a round (gen_pgt.py): the previous round's CAM refined by its cross-task affinity (<see cref="RefineCam"/>), and the
    /// saliency 0.5·(σ(refined saliency)↑ + <paramref name="saliency"/>), smoothed by <paramref name="smoothSaliency"/> (the reference's
    /// one-iteration saliency CRF, <see cref="Refinement.Saliency.SaliencyCrf"/>; null = not smoothed), fused by <see cref="Fuse"/>.
    /// previous: the previous round's outputs on the images; saliency [B, H, W] the off-the-shelf (or estimated) maps; imageLabels [B, K].
    /// → (labels [B, H, W] int64, new saliency [B, H, W]: the next round's saliency target).
    /// Ablations: a model trained without the cross-task affinity has no affinity to propagate with, so its normalised CAM is used as it
    /// is (resized), as its refined map is; <paramref name="predictedSaliency"/> false (a model trained without the saliency task, whose
    /// saliency branch learned nothing) keeps <paramref name="saliency"/> alone instead of averaging it with the branch's prediction.
    /// </summary>
    public static (Tensor Labels, Tensor Saliency) Update(AuxSegNetOutput previous, Tensor saliency, Tensor imageLabels, double camThreshold = 0.2,
        double saliencyThreshold = 0.06, Func<Tensor, Tensor>? smoothSaliency = null, bool predictedSaliency = true)
    {
        using var scope = torch.NewDisposeScope();
        var (h, w) = (saliency.shape[^2], saliency.shape[^1]);
        var cam = previous.CrossTaskAffinity is { } affinity
            ? RefineCam(previous.Cam, affinity, h, w)
            : torch.nn.functional.interpolate(NormalizeCam(previous.Cam), [h, w], mode: InterpolationMode.Bilinear, align_corners: false);
        var newSaliency = saliency.clone();
        if (predictedSaliency)
        {
            var predicted = torch.nn.functional.interpolate(previous.RefinedSaliency, [h, w], mode: InterpolationMode.Bilinear, align_corners: false)
                .sigmoid().squeeze(1);
            newSaliency = predicted.add(saliency).mul(0.5);
        }
        if (smoothSaliency is not null) newSaliency = smoothSaliency(newSaliency);
        var labels = Fuse(cam, newSaliency, imageLabels, camThreshold, saliencyThreshold);
        return (labels.MoveToOuterDisposeScope(), newSaliency.MoveToOuterDisposeScope());
    }
}
