using TorchSharp;
using WeakSeg.Methods.ToCo;
using WeakSeg.Refinement;
using WeakSeg.Refinement.Par;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.MoRe;

/// <summary>
/// MoRe as an <see cref="IWsssMethod"/>: loss <see cref="MoReTraining.Loss"/> (step index, images for PAR, the step's RNG for URE),
/// heads and GCR at <see cref="MoReConfig.HeadLearningRateScale"/>× the rate. Maps: the final classifier's CAM
/// (<see cref="LocalizationMapKind.Fused"/>) and the LAM (<see cref="LocalizationMapKind.Lam"/>: class tokens after GCR × final
/// patch tokens). <see cref="Localize"/> follows the method's multi-scale protocols (<see cref="MoReMaps.MultiScaleCam"/>,
/// <see cref="MoReMaps.MultiScaleLam"/>).
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

    /// <summary>[B, 3, H, W] → raw CAM [B, K, h, w] of the final classifier (no GCR), or the raw LAM (dot products, no ReLU).</summary>
    public override Tensor PatchGridMaps(Tensor images, LocalizationMapKind kind)
    {
        if (kind != LocalizationMapKind.Lam) return ToCoMethod.CamPatchGrid(TypedModel.CamOnly, images, kind, Name);
        using var output = TypedModel.forward(images);
        return MoReMaps.LocalizationMap(output.FeatureMap, output.AttributeTokens).detach();
    }

    /// <summary>The inference scales of the ToCo base (<see cref="ToCoMaps.SegmentationScales"/>; MoRe's own script resizes to 448·s squares).</summary>
    public IReadOnlyList<double> DecoderScales => ToCoMaps.SegmentationScales;

    /// <summary>ToCo's post-processing CRF (<see cref="DenseCrfConfig.ToCo"/>).</summary>
    public DenseCrfConfig DecoderCrf => DenseCrfConfig.ToCo;

    /// <summary>The LargeFOV decoder's probabilities (ToCo's inference protocol): [K + 1, H, W].</summary>
    public Tensor SegmentationProbabilities(Tensor image, IReadOnlyList<double> scales, bool flip) =>
        ToCoMethod.DecoderProbabilities(x => TypedModel.Forward(x, withGcr: false).Segmentation, image, scales, flip);

    /// <summary>
    /// MoRe's multi-scale CAM, or with <see cref="LocalizationMapKind.Lam"/> its multi-scale LAM (multi_scale_lam2), at
    /// <paramref name="options"/>' scales (flip always), classes selected: [K', H, W].
    /// </summary>
    public Tensor Localize(Tensor image, IReadOnlyList<int> classes, LocalizationOptions options)
    {
        if (options.MapKind != LocalizationMapKind.Lam) return ToCoMethod.LocalizeCam(TypedModel.CamOnly, image, classes, options, NumClasses, Name);
        options.EnsureValid();
        if (image.dim() != 3) throw new WeakSegException($"LAM input must be one image [3, H, W]; got [{string.Join(", ", image.shape)}]");
        using var scope = torch.NewDisposeScope();
        var lam = MoReMaps.MultiScaleLam(TypedModel, image.unsqueeze(0), options.Scales);
        return ToCoMethod.SelectClasses(lam, classes, NumClasses).MoveToOuterDisposeScope();
    }
}
