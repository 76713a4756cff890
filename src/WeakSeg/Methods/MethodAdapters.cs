using TorchSharp;
using WeakSeg.Methods.Baselines;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Models.Vit;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods;

/// <summary>MCTformer V1/V2 as an <see cref="IWsssMethod"/>: loss <see cref="MctFormerLoss.Total"/>, maps from <see cref="MctFormerMaps.Localize"/>.</summary>
public sealed class MctFormerMethod(MctFormerConfig config)
    : WsssMethodBase<MctFormerConfig, MctFormerModel>(config, new MctFormerModel(config))
{
    public override string Name => MethodConfig.Variant == MctFormerVariant.V1 ? MethodRegistry.MctFormerV1 : MethodRegistry.MctFormerV2;
    public MctFormerModel Network => TypedModel;
    public override IReadOnlyList<LocalizationMapKind> SupportedMapKinds { get; } =
        [LocalizationMapKind.Refined, LocalizationMapKind.Fused, LocalizationMapKind.ClassToPatch];

    public override LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context)
    {
        var output = TypedModel.Forward(batch.Images);
        var classLoss = MctFormerLoss.MultilabelSoftMargin(output.ClassLogits, batch.Labels);
        if (output.PatchLogits is null) return new LossTerms(classLoss, [("cls", classLoss)]);
        var patchLoss = MctFormerLoss.MultilabelSoftMargin(output.PatchLogits, batch.Labels);
        return new LossTerms(classLoss + patchLoss, [("cls", classLoss), ("patch", patchLoss)]);
    }

    /// <summary>[B, 3, H, W] → [B, K, h, w]: class-to-patch, fused (V2 ⊙ ReLU(PatchCAM)) or refined (affinity · fused).</summary>
    public override Tensor PatchGridMaps(Tensor images, LocalizationMapKind kind)
    {
        using var output = TypedModel.Forward(images);
        using var maps = MctFormerMaps.Localize(output, MethodConfig.CamLayers);
        var chosen = kind switch
        {
            LocalizationMapKind.ClassToPatch => maps.ClassToPatch,
            LocalizationMapKind.Fused => maps.Maps,
            LocalizationMapKind.Refined => maps.Refined,
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        return chosen.clone();
    }
}

/// <summary>
/// <c>vit-cls</c> baseline as an <see cref="IWsssMethod"/>: multi-label soft margin on the class-token logits; map = the
/// class-agnostic class-token→patch attention (the same for every class), refined = patch affinity of its own attention · map.
/// </summary>
public sealed class VitClsMethod(VitClsConfig config)
    : WsssMethodBase<VitClsConfig, VitClsModel>(config, new VitClsModel(config))
{
    public override string Name => MethodRegistry.VitCls;
    public override IReadOnlyList<LocalizationMapKind> SupportedMapKinds { get; } =
        [LocalizationMapKind.Refined, LocalizationMapKind.Fused, LocalizationMapKind.ClassToPatch];

    public override LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context)
    {
        var output = TypedModel.Forward(batch.Images);
        return new LossTerms(MctFormerLoss.MultilabelSoftMargin(output.Logits, batch.Labels));
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

    internal static Tensor RefineWithOwnAffinity(VitOutput backbone, Tensor maps)
    {
        using var headMean = AttentionMaps.HeadMean(backbone.Attentions);                       // [L, B, T, T]
        using var affinity = AttentionMaps.PatchAffinity(headMean, backbone.NumClassTokens);   // [B, N, N]
        return AttentionMaps.Refine(affinity, maps);
    }
}

/// <summary>
/// <c>cam</c> baseline as an <see cref="IWsssMethod"/>: multi-label soft margin on the GAP-classifier logits; map = ReLU(CAM),
/// refined = patch affinity of its own attention · ReLU(CAM). It has no class-to-patch attention.
/// </summary>
public sealed class CamMethod(CamBaselineConfig config)
    : WsssMethodBase<CamBaselineConfig, CamBaselineModel>(config, new CamBaselineModel(config))
{
    public override string Name => MethodRegistry.Cam;
    public override IReadOnlyList<LocalizationMapKind> SupportedMapKinds { get; } = [LocalizationMapKind.Refined, LocalizationMapKind.Fused];

    public override LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context)
    {
        var output = TypedModel.Forward(batch.Images);
        return new LossTerms(MctFormerLoss.MultilabelSoftMargin(output.Logits, batch.Labels));
    }

    /// <summary>[B, 3, H, W] → [B, K, h, w].</summary>
    public override Tensor PatchGridMaps(Tensor images, LocalizationMapKind kind)
    {
        if (kind == LocalizationMapKind.ClassToPatch)
            throw new WeakSegException("the cam baseline has no class-to-patch attention map; use --map fused or refined");
        using var scope = torch.NewDisposeScope();
        using var output = TypedModel.Forward(images);
        var maps = output.Cams.relu();
        if (kind == LocalizationMapKind.Refined) maps = VitClsMethod.RefineWithOwnAffinity(output.Backbone, maps);
        return maps.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// WeakTr CAM generation as an <see cref="IWsssMethod"/>: loss = class tokens + coarse CAM + fine CAM (soft margin each);
/// maps: Refined = fine CAM (PA-weighted, eq. 6), Fused = coarse CAM, ClassToPatch = the head-weighted cross attention ĈA.
/// </summary>
public sealed class WeakTrMethod(WeakSeg.Methods.WeakTr.WeakTrConfig config)
    : WsssMethodBase<WeakSeg.Methods.WeakTr.WeakTrConfig, WeakSeg.Methods.WeakTr.WeakTrModel>(config, new WeakSeg.Methods.WeakTr.WeakTrModel(config))
{
    public override string Name => MethodRegistry.WeakTr;
    public override IReadOnlyList<LocalizationMapKind> SupportedMapKinds { get; } =
        [LocalizationMapKind.Refined, LocalizationMapKind.Fused, LocalizationMapKind.ClassToPatch];

    public override LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context) => TypedModel.ComputeLoss(batch.Images, batch.Labels);

    /// <summary>[B, 3, H, W] → [B, K, h, w], ReLU applied (CAMs are compared with a background threshold).</summary>
    public override Tensor PatchGridMaps(Tensor images, LocalizationMapKind kind)
    {
        using var output = TypedModel.Forward(images);
        var chosen = kind switch
        {
            LocalizationMapKind.Refined => output.FineCam,
            LocalizationMapKind.Fused => output.CoarseCam,
            LocalizationMapKind.ClassToPatch => output.CrossAttention,
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        return chosen.relu();
    }
}
