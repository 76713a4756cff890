using TorchSharp;
using WeakSeg.Methods.ToCo;
using WeakSeg.Refinement;
using WeakSeg.Refinement.Par;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.MoRe;

/// <summary>
/// MoRe as an <see cref="IWsssMethod"/>: loss <see cref="MoReTraining.Loss"/> (step index, images for PAR, the step's RNG for URE),
/// heads and GCR at <see cref="MoReConfig.HeadLearningRateScale"/>× the rate. Map: the final classifier's CAM
/// (<see cref="LocalizationMapKind.Fused"/>); the LAM (<see cref="MoReMaps.MultiScaleLam"/>) has no map kind yet.
/// <see cref="Localize"/> follows the method's multi-scale protocol (<see cref="MoReMaps.MultiScaleCam"/>).
/// </summary>
public sealed class MoReMethod(MoReConfig config) : WsssMethodBase<MoReConfig, MoReNetwork>(config, new MoReNetwork(config)), ISegmentationDecoderMethod
{
    public const string MethodName = "more";

    readonly PixelAdaptiveRefinement _par = new(config.Par);

    public override string Name => MethodName;
    public MoReNetwork Network => TypedModel;

    public override LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context) =>
        MoReTraining.Loss(TypedModel, _par, batch.Images, batch.Labels, context.Step, context.Random);

    public override double LearningRateScale(string parameterName) =>
        TypedModel.IsHeadParameter(parameterName) ? MethodConfig.HeadLearningRateScale : base.LearningRateScale(parameterName);

    /// <summary>[B, 3, H, W] → raw CAM [B, K, h, w] of the final classifier (no GCR).</summary>
    public override Tensor PatchGridMaps(Tensor images, LocalizationMapKind kind) => ToCoMethod.CamPatchGrid(TypedModel.CamOnly, images, kind, Name);

    /// <summary>The inference scales of the ToCo base (<see cref="ToCoMaps.SegmentationScales"/>; MoRe's own script resizes to 448·s squares).</summary>
    public IReadOnlyList<double> DecoderScales => ToCoMaps.SegmentationScales;

    /// <summary>ToCo's post-processing CRF (<see cref="DenseCrfConfig.ToCo"/>).</summary>
    public DenseCrfConfig DecoderCrf => DenseCrfConfig.ToCo;

    /// <summary>The LargeFOV decoder's probabilities (ToCo's inference protocol): [K + 1, H, W].</summary>
    public Tensor SegmentationProbabilities(Tensor image, IReadOnlyList<double> scales, bool flip) =>
        ToCoMethod.DecoderProbabilities(x => TypedModel.Forward(x, withGcr: false).Segmentation, image, scales, flip);

    /// <summary>MoRe's multi-scale CAM at <paramref name="options"/>' scales (flip always), classes selected: [K', H, W].</summary>
    public Tensor Localize(Tensor image, IReadOnlyList<int> classes, LocalizationOptions options) =>
        ToCoMethod.LocalizeCam(TypedModel.CamOnly, image, classes, options, NumClasses, Name);
}
