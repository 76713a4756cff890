using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.MctFormer;

/// <summary>MCTformer V1/V2 as an <see cref="IWsssMethod"/>: loss <see cref="MctFormerLoss.Compute"/>, maps from <see cref="MctFormerMaps.Localize"/>.</summary>
public sealed class MctFormerMethod(MctFormerConfig config)
    : WsssMethodBase<MctFormerConfig, MctFormerModel>(config, new MctFormerModel(config))
{
    public const string V1Name = "mctformer-v1", V2Name = "mctformer-v2";

    public override string Name => MethodConfig.Variant == MctFormerVariant.V1 ? V1Name : V2Name;
    public MctFormerModel Network => TypedModel;

    public override LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context) =>
        MctFormerLoss.Compute(TypedModel.Forward(batch.Images), batch.Labels);      // the output's tensors belong to the step's scope

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
