using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.WeakTr;

/// <summary>
/// WeakTr CAM generation as an <see cref="IWsssMethod"/>: loss = class tokens + coarse CAM + fine CAM (soft margin each, <see cref="WeakTrLoss"/>);
/// maps: Refined = fine CAM (PA-weighted, eq. 6), Fused = coarse CAM, ClassToPatch = the head-weighted cross attention ĈA.
/// </summary>
public sealed class WeakTrMethod(WeakTrConfig config)
    : WsssMethodBase<WeakTrConfig, WeakTrModel>(config, new WeakTrModel(config))
{
    public const string MethodName = "weaktr";

    public override string Name => MethodName;
    public WeakTrModel Network => TypedModel;

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
