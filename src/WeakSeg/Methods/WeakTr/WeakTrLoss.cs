using WeakSeg.Methods.Localization;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.WeakTr;

/// <summary>WeakTr CAM-generation losses (paper eq. 7 and appendix eq. 18–19), pure functions.</summary>
public static class WeakTrLoss
{
    /// <summary>L = L_Fine-CAM + L_CLS-token + L_Coarse-CAM, each a multilabel soft margin. Parts: "cls", "coarse", "fine".</summary>
    public static LossTerms Compute(WeakTrOutput output, Tensor labels)
    {
        var cls = ClassificationLoss.MultilabelSoftMargin(output.ClassLogits, labels);
        var coarse = ClassificationLoss.MultilabelSoftMargin(output.CoarseLogits, labels);
        var fine = ClassificationLoss.MultilabelSoftMargin(output.FineLogits, labels);
        return new LossTerms(cls + coarse + fine, [("cls", cls), ("coarse", coarse), ("fine", fine)]);
    }
}
