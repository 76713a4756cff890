using WeakSeg.Methods.Localization;
using WeakSeg.Models;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.MctFormer;

/// <summary>The MCTformer training loss (a pure function): what <see cref="MctFormerMethod.ComputeLoss"/> trains with.</summary>
public static class MctFormerLoss
{
    /// <summary>
    /// V1: multi-label soft margin on the class-token logits ("cls"); V2: plus the same loss on the PatchCAM logits ("patch").
    /// labels [B, C] in {0, 1}. The parts stay alive for the log; call inside the step's dispose scope.
    /// </summary>
    public static LossTerms Compute(MctFormerOutput output, Tensor labels)
    {
        var classLoss = ClassificationLoss.MultilabelSoftMargin(output.ClassLogits, labels);
        if (output.PatchLogits is null) return new LossTerms(classLoss, [("cls", classLoss)]);
        var patchLoss = ClassificationLoss.MultilabelSoftMargin(output.PatchLogits, labels);
        return new LossTerms(StableScalars.Add(classLoss, patchLoss), [("cls", classLoss), ("patch", patchLoss)]);   // not `+`: see StableScalars
    }
}
