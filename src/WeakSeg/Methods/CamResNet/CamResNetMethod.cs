using TorchSharp;
using WeakSeg.Methods.Localization;
using WeakSeg.Models.ResNet;
using WeakSeg.Models.Weights;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.CamResNet;

/// <summary>
/// <c>cam-resnet18</c> as an <see cref="IWsssMethod"/>: multi-label soft margin on the pooled class scores; map (<see cref="LocalizationMapKind.Fused"/>,
/// the method's one map) = ReLU(CAM) on the stride-8 grid. The trunk trains at <see cref="CamResNetConfig.TrunkLearningRateScale"/> × the rate.
/// </summary>
public sealed class CamResNetMethod(CamResNetConfig config)
    : WsssMethodBase<CamResNetConfig, ResNetCam>(config, new ResNetCam(config.Network)), IWsssMethod
{
    public const string MethodName = "cam-resnet18";

    public override string Name => MethodName;

    /// <summary>The network (trunk <c>backbone.*</c>, classifier <c>classifier.weight</c>).</summary>
    public ResNetCam Network => TypedModel;

    public override LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context)
    {
        var output = TypedModel.call(batch.Images);
        return new LossTerms(ClassificationLoss.MultilabelSoftMargin(output.Logits, batch.Labels));
    }

    public override double LearningRateScale(string parameterName) => TypedModel.LearningRateScale(parameterName);

    /// <summary>[B, 3, H, W] → ReLU(CAM) [B, K, H/8, W/8].</summary>
    public override Tensor PatchGridMaps(Tensor images, LocalizationMapKind kind)
    {
        if (kind != LocalizationMapKind.Fused)
            throw new WeakSegException($"method {MethodName} has one map, the CAM; use --map fused (got {LocalizationMapKindNames.Name(kind)})");
        return TypedModel.Maps(images);
    }

    /// <summary>Loads torchvision-keyed ResNet safetensors (e.g. from <c>weakseg weights export</c>) into the trunk.</summary>
    public WeightImportReport ImportTimmWeights(string path) => TimmWeightImport.LoadFile(TypedModel.Backbone, path);
}
