using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Methods.MctFormer;

/// <summary>MCTformer training losses (pure functions).</summary>
public static class MctFormerLoss
{
    /// <summary>Multi-label soft margin: mean over classes and batch of −[y·log σ(x) + (1−y)·log σ(−x)]. logits, labels [B, C] → scalar.</summary>
    public static Tensor MultilabelSoftMargin(Tensor logits, Tensor labels) =>
        nn.functional.multilabel_soft_margin_loss(logits, labels.to_type(logits.dtype));

    /// <summary>V1: loss on class logits; V2: plus the same loss on patch logits. labels [B, C] in {0, 1} → scalar.</summary>
    public static Tensor Total(MctFormerOutput output, Tensor labels)
    {
        var loss = MultilabelSoftMargin(output.ClassLogits, labels);
        if (output.PatchLogits is null) return loss;
        using var patchLoss = MultilabelSoftMargin(output.PatchLogits, labels);
        using var classLoss = loss;
        return WeakSeg.Models.StableScalars.Add(classLoss, patchLoss);                   // not `+`: see StableScalars
    }
}
