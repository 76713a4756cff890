using TorchSharp;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.WeakTr;

/// <summary>WeakTr CAM-generation losses (paper eq. 7 and appendix eq. 18–19), pure functions.</summary>
public static class WeakTrLoss
{
    /// <summary>Multi-label soft margin: mean over classes and batch of −[y·log σ(x) + (1−y)·log σ(−x)]. logits, labels [B, C] → scalar.</summary>
    public static Tensor MultilabelSoftMargin(Tensor logits, Tensor labels) =>
        nn.functional.multilabel_soft_margin_loss(logits, labels.to_type(logits.dtype));

    /// <summary>L = L_Fine-CAM + L_CLS-token + L_Coarse-CAM, each a multilabel soft margin. Parts: "cls", "coarse", "fine".</summary>
    public static LossTerms Compute(WeakTrOutput output, Tensor labels)
    {
        var cls = MultilabelSoftMargin(output.ClassLogits, labels);
        var coarse = MultilabelSoftMargin(output.CoarseLogits, labels);
        var fine = MultilabelSoftMargin(output.FineLogits, labels);
        return new LossTerms(cls + coarse + fine, [("cls", cls), ("coarse", coarse), ("fine", fine)]);
    }
}
