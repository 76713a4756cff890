using TorchSharp;
using WeakSeg.Refinement;
using WeakSeg.Refinement.Par;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.ToCo;

/// <summary>
/// ToCo as an <see cref="IWsssMethod"/>: loss <see cref="ToCoTraining.Loss"/> (the step index picks the loss weights, the images
/// feed PAR, the step's generator draws the class-token contrast's views and crops), heads at <see cref="ToCoConfig.HeadLearningRateScale"/>× the rate. Map: the final classifier's CAM
/// (<see cref="LocalizationMapKind.Fused"/>, the method's map; ToCo has no affinity refinement or class-to-patch attention).
/// <see cref="Localize"/> follows ToCo's own protocol, <see cref="ToCoMaps.MultiScaleCam(ToCoNetwork, Tensor, IReadOnlyList{double})"/>:
/// max of a view and its flip, summed over scales, min-max per class.
/// </summary>
public sealed class ToCoMethod(ToCoConfig config) : WsssMethodBase<ToCoConfig, ToCoNetwork>(config, new ToCoNetwork(config)), ISegmentationDecoderMethod
{
    public const string MethodName = "toco";

    readonly PixelAdaptiveRefinement _par = new(config.Par);

    public override string Name => MethodName;
    public ToCoNetwork Network => TypedModel;

    public override LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context) =>
        ToCoTraining.Loss(TypedModel, _par, batch.Images, batch.Labels, context.Step, context.Random);

    public override double LearningRateScale(string parameterName) =>
        TypedModel.IsHeadParameter(parameterName) ? MethodConfig.HeadLearningRateScale : base.LearningRateScale(parameterName);

    /// <summary>[B, 3, H, W] → raw CAM [B, K, h, w] of the final classifier.</summary>
    public override Tensor PatchGridMaps(Tensor images, LocalizationMapKind kind) => CamPatchGrid(TypedModel.CamOnly, images, kind, Name);

    /// <summary>ToCo's multi-scale CAM at <paramref name="options"/>' scales (flip always, as the method's protocol), classes selected.</summary>
    public Tensor Localize(Tensor image, IReadOnlyList<int> classes, LocalizationOptions options) =>
        LocalizeCam(TypedModel.CamOnly, image, classes, options, NumClasses, Name);

    /// <summary>ToCo's inference scales (<see cref="ToCoMaps.SegmentationScales"/>).</summary>
    public IReadOnlyList<double> DecoderScales => ToCoMaps.SegmentationScales;

    /// <summary>ToCo's post-processing CRF (<see cref="DenseCrfConfig.ToCo"/>).</summary>
    public DenseCrfConfig DecoderCrf => DenseCrfConfig.ToCo;

    /// <summary>The LargeFOV decoder's probabilities by ToCo's inference (<see cref="ToCoMaps.MultiScaleSegmentation"/>): [K + 1, H, W].</summary>
    public Tensor SegmentationProbabilities(Tensor image, IReadOnlyList<double> scales, bool flip) =>
        DecoderProbabilities(x => TypedModel.forward(x).Segmentation, image, scales, flip);

    /// <summary>A single-stage decoder's probabilities of one image [3, H, W] → [K + 1, H, W] (<see cref="ToCoMaps.MultiScaleSegmentation"/>).</summary>
    internal static Tensor DecoderProbabilities(Func<Tensor, Tensor> segmentationLogits, Tensor image, IReadOnlyList<double> scales, bool flip)
    {
        if (image.dim() != 3) throw new WeakSegException($"segmentation input must be one image [3, H, W]; got [{string.Join(", ", image.shape)}]");
        using var scope = torch.NewDisposeScope();
        var probabilities = ToCoMaps.MultiScaleSegmentation(segmentationLogits, image.unsqueeze(0), scales, flip);
        return probabilities[0].MoveToOuterDisposeScope();
    }

    /// <summary>A single-stage method's patch-grid map: the raw CAM of <paramref name="camOnly"/> (the aux CAM dropped); only fused is accepted.</summary>
    internal static Tensor CamPatchGrid(Func<Tensor, (Tensor Cam, Tensor AuxCam)> camOnly, Tensor images, LocalizationMapKind kind, string method)
    {
        RequireCam(kind, method);
        var (cam, auxCam) = camOnly(images);
        auxCam.Dispose();
        return cam;
    }

    /// <summary>
    /// A single-stage method's localisation: ToCo's multi-scale CAM protocol (<see cref="ToCoMaps.MultiScaleCam(Func{Tensor, ValueTuple{Tensor, Tensor}}, Tensor, IReadOnlyList{double})"/>,
    /// flip always) on <paramref name="camOnly"/> at <paramref name="options"/>' scales, classes selected: image [3, H, W] → [K', H, W].
    /// </summary>
    internal static Tensor LocalizeCam(Func<Tensor, (Tensor Cam, Tensor AuxCam)> camOnly, Tensor image, IReadOnlyList<int> classes,
        LocalizationOptions options, int numClasses, string method)
    {
        RequireCam(options.MapKind, method);
        options.EnsureValid();
        using var scope = torch.NewDisposeScope();
        var (cam, _) = ToCoMaps.MultiScaleCam(camOnly, image.unsqueeze(0), options.Scales);
        return SelectClasses(cam, classes, numClasses).MoveToOuterDisposeScope();
    }

    /// <summary>The single-stage methods' one map kind: <see cref="LocalizationMapKind.Fused"/> (the CAM); any other is an error.</summary>
    internal static void RequireCam(LocalizationMapKind kind, string method)
    {
        if (kind != LocalizationMapKind.Fused)
            throw new WeakSegException($"method '{method}' has no {LocalizationMapKindNames.Name(kind)} map (it has: fused = the CAM)");
    }

    /// <summary>maps [1, K, H, W] → the listed classes (1..K) as [K', H, W]; a class outside 1..K is an error naming it.</summary>
    internal static Tensor SelectClasses(Tensor maps, IReadOnlyList<int> classes, int numClasses)
    {
        var bad = classes.Where(c => c < 1 || c > numClasses).ToList();
        if (bad.Count > 0) throw new WeakSegException($"classes must be in 1..{numClasses} (got {string.Join(", ", bad)})");
        using var index = torch.tensor(classes.Select(c => (long)(c - 1)).ToArray());
        return maps[0].index_select(0, index);
    }
}
