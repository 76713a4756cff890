using WeakSeg.Models.Weights;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.MctFormerPlus;

/// <summary>
/// MCTformer+ as an <see cref="IWsssMethod"/>: loss <see cref="MctFormerPlusLoss.Compute"/>, maps from
/// <see cref="MctFormerPlusMaps.Localize"/> (refined = patch affinity · fused, fused = √(class-to-patch ⊙ ReLU(PatchCAM)),
/// class-to-patch, patch-cam), timm weights through <see cref="MctFormerPlusWeights.LoadFile"/>.
/// </summary>
public sealed class MctFormerPlusMethod(MctFormerPlusConfig config)
    : WsssMethodBase<MctFormerPlusConfig, MctFormerPlusModel>(config, new MctFormerPlusModel(config)), IWsssMethod
{
    public const string MethodName = "mctformer-plus";

    public override string Name => MethodName;
    public MctFormerPlusModel Network => TypedModel;

    public override LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context) =>
        MctFormerPlusLoss.Compute(TypedModel.Forward(batch.Images), batch.Labels, MethodConfig.ContrastLayers, MethodConfig.CctWeight);   // the output's tensors belong to the step's scope

    /// <summary>[B, 3, H, W] → [B, K, h, w]: the map of <paramref name="kind"/> (see <see cref="MctFormerPlusLocalization"/>).</summary>
    public override Tensor PatchGridMaps(Tensor images, LocalizationMapKind kind)
    {
        using var output = TypedModel.Forward(images);
        using var maps = MctFormerPlusMaps.Localize(output, MethodConfig.MapLayers);
        return maps.Get(kind).clone();
    }

    /// <summary>A DeiT-style checkpoint (one class token, joint pos_embed) initialises the C class tokens and the two position
    /// embeddings as the official code does (<see cref="MctFormerPlusWeights"/>); an MCTformer+ checkpoint loads as it is.</summary>
    public WeightImportReport ImportTimmWeights(string path) => MctFormerPlusWeights.LoadFile(TypedModel, path);
}
