using TorchSharp;
using WeakSeg.Methods.Localization;
using WeakSeg.Models.Vit;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.Baselines;

/// <summary>
/// <c>vit-cls</c> baseline as an <see cref="IWsssMethod"/>: multi-label soft margin on the class-token logits; map = the
/// class-agnostic class-token→patch attention (the same for every class), refined = patch affinity of its own attention · map.
/// </summary>
public sealed class VitClsMethod(VitClsConfig config)
    : WsssMethodBase<VitClsConfig, VitClsModel>(config, new VitClsModel(config))
{
    public const string MethodName = "vit-cls";

    public override string Name => MethodName;

    public override LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context)
    {
        var output = TypedModel.Forward(batch.Images);
        return new LossTerms(ClassificationLoss.MultilabelSoftMargin(output.Logits, batch.Labels));
    }

    /// <summary>[B, 3, H, W] → [B, K, h, w]; Fused and ClassToPatch are the same class-agnostic map.</summary>
    public override Tensor PatchGridMaps(Tensor images, LocalizationMapKind kind)
    {
        using var scope = torch.NewDisposeScope();
        using var output = TypedModel.Forward(images);
        var maps = TypedModel.ClassAgnosticMaps(output.Backbone);                               // [B, K, h, w]
        if (kind == LocalizationMapKind.Refined) maps = RefineWithOwnAffinity(output.Backbone, maps);
        return maps.MoveToOuterDisposeScope();
    }

    /// <summary>Patch affinity of the backbone's own attention (all layers, head mean) · <paramref name="maps"/>: [B, K, h, w] → [B, K, h, w].</summary>
    internal static Tensor RefineWithOwnAffinity(VitOutput backbone, Tensor maps)
    {
        using var headMean = AttentionMaps.HeadMean(backbone.Attentions);                       // [L, B, T, T]
        using var affinity = AttentionMaps.PatchAffinity(headMean, backbone.NumClassTokens);   // [B, N, N]
        return AttentionMaps.Refine(affinity, maps);
    }
}
