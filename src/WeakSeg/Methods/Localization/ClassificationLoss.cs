using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Methods.Localization;

/// <summary>The image-level classification loss that every CAM method trains with (pure functions).</summary>
public static class ClassificationLoss
{
    /// <summary>Multi-label soft margin: mean over classes and batch of −[y·log σ(x) + (1−y)·log σ(−x)]. logits, labels [B, C] → scalar.</summary>
    public static Tensor MultilabelSoftMargin(Tensor logits, Tensor labels) =>
        nn.functional.multilabel_soft_margin_loss(logits, labels.to_type(logits.dtype));
}
