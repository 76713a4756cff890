using TorchSharp;
using WeakSeg.Methods.Localization;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.Baselines;

/// <summary>
/// <c>cam</c> baseline as an <see cref="IWsssMethod"/>: multi-label soft margin on the GAP-classifier logits; map = ReLU(CAM),
/// refined = patch affinity of its own attention · ReLU(CAM). It has no class-to-patch attention.
/// </summary>
public sealed class CamMethod(CamBaselineConfig config)
    : WsssMethodBase<CamBaselineConfig, CamBaselineModel>(config, new CamBaselineModel(config))
{
    public const string MethodName = "cam";

    public override string Name => MethodName;

    public override LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context)
    {
        var output = TypedModel.Forward(batch.Images);
        return new LossTerms(ClassificationLoss.MultilabelSoftMargin(output.Logits, batch.Labels));
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
