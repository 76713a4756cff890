using TorchSharp;
using WeakSeg.Methods.Localization;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.AuxSegNet;

/// <summary>
/// The five losses (official train_AuxAff.py, all weights 1): L = L_cls + L_sal(init) + L_sal(refined) + L_seg(init) + L_seg(refined).
/// L_cls: multi-label soft margin; L_sal: BCE with logits against the saliency label binarised at 0.5; L_seg: cross-entropy with
/// ignore 255. Every prediction is bilinearly upsampled to the label size first.
/// </summary>
public static class AuxSegNetLoss
{
    /// <summary>BCE with logits of a saliency prediction [B, 1, h, w] against saliency [B, H, W] in [0, 1] binarised at <paramref name="binarizeAt"/> (strict).</summary>
    public static Tensor Saliency(Tensor prediction, Tensor saliency, double binarizeAt = 0.5)
    {
        using var scope = torch.NewDisposeScope();
        var up = Upsample(prediction, saliency.shape[^2], saliency.shape[^1]).squeeze(1);
        var target = saliency.gt(binarizeAt).to_type(up.dtype);
        return nn.functional.binary_cross_entropy_with_logits(up, target).MoveToOuterDisposeScope();
    }

    /// <summary>Cross-entropy (ignore 255, mean over the other pixels) of logits [B, K+1, h, w] against labels [B, H, W]; 0 when every pixel is ignored.</summary>
    public static Tensor Segmentation(Tensor prediction, Tensor labels)
    {
        using var scope = torch.NewDisposeScope();
        var up = Upsample(prediction, labels.shape[^2], labels.shape[^1]);
        if (labels.ne(AuxSegNetLabels.Ignore).sum().item<long>() == 0) return up.sum().mul(0.0).MoveToOuterDisposeScope();
        return nn.functional.cross_entropy(up, labels, ignore_index: AuxSegNetLabels.Ignore).MoveToOuterDisposeScope();
    }

    static Tensor Upsample(Tensor x, long height, long width) =>
        x.shape[2] == height && x.shape[3] == width ? x.alias()
            : nn.functional.interpolate(x, [height, width], mode: InterpolationMode.Bilinear, align_corners: false);

    /// <summary>
    /// The total and its parts for one batch. With <paramref name="withLabels"/> false (before <see cref="AuxSegNetConfig.LabelStartStep"/>)
    /// only L_cls; without <see cref="AuxSegNetConfig.SaliencyAuxiliary"/> no saliency terms; without <see cref="AuxSegNetConfig.CrossTaskAffinity"/>
    /// no refined terms (refined = init there).
    /// </summary>
    public static LossTerms Compute(AuxSegNetOutput output, Tensor imageLabels, Tensor segmentationLabels, Tensor saliency, AuxSegNetConfig config, bool withLabels)
    {
        var cls = ClassificationLoss.MultilabelSoftMargin(output.Logits, imageLabels);
        var parts = new List<(string, Tensor)> { ("cls", cls.detach()) };
        var total = cls;
        if (withLabels)
        {
            var terms = new List<(string, Tensor)> { ("seg_init", Segmentation(output.InitialSegmentation, segmentationLabels)) };
            if (config.CrossTaskAffinity) terms.Add(("seg_refined", Segmentation(output.RefinedSegmentation, segmentationLabels)));
            if (config.SaliencyAuxiliary)
            {
                terms.Add(("sal_init", Saliency(output.InitialSaliency, saliency, config.SaliencyTargetThreshold)));
                if (config.CrossTaskAffinity) terms.Add(("sal_refined", Saliency(output.RefinedSaliency, saliency, config.SaliencyTargetThreshold)));
            }
            foreach (var (name, term) in terms)
            {
                total = total.add(term);
                parts.Add((name, term.detach()));
            }
        }
        return new LossTerms(total, parts);
    }
}
