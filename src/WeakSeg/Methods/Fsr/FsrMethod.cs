using TorchSharp;
using WeakSeg.Methods.ToCo;
using WeakSeg.Models.Weights;
using WeakSeg.Refinement;
using WeakSeg.Refinement.Par;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.Fsr;

/// <summary>
/// FSR as an <see cref="IWsssMethod"/>: loss <see cref="FsrTraining.Loss"/> (step index, images for the views and PAR, the step's RNG
/// for views and mask noise), the EMA teacher update after every optimizer step (<see cref="FsrTraining.UpdateTeacher"/>), the
/// student's decoder, projector and classifiers at <see cref="FsrConfig.HeadLearningRateScale"/>× the rate; the teacher is not
/// trained but lives in the model, so checkpoints hold it. Map: the student's final classifier CAM
/// (<see cref="LocalizationMapKind.Fused"/>), with ToCo's multi-scale protocol in <see cref="Localize"/>.
/// </summary>
public sealed class FsrMethod(FsrConfig config) : WsssMethodBase<FsrConfig, FsrModel>(config, new FsrModel(config)), ISegmentationDecoderMethod
{
    public const string MethodName = "fsr";

    readonly PixelAdaptiveRefinement _par = new(config.Par);

    public override string Name => MethodName;
    public FsrModel FsrModel => TypedModel;

    public override LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context) =>
        FsrTraining.Loss(TypedModel, _par, batch.Images, batch.Labels, context.Step, context.Random);

    public void AfterOptimizerStep(TrainStepContext context) => FsrTraining.UpdateTeacher(TypedModel, context.Step, context.TotalSteps);

    public override double LearningRateScale(string parameterName) =>
        parameterName.StartsWith("student.", StringComparison.Ordinal) && FsrNetwork.IsHeadParameter(parameterName["student.".Length..])
            ? MethodConfig.HeadLearningRateScale
            : base.LearningRateScale(parameterName);

    /// <summary>
    /// Loads a timm ViT checkpoint into the student's encoder (its cls_token initialises the aggregator's token, as the reference;
    /// mask_token and the aggregator blocks stay as initialised) and copies the student to the teacher.
    /// </summary>
    public WeightImportReport ImportTimmWeights(string path)
    {
        var report = TimmWeightImport.LoadFile(TypedModel.Student.Encoder, path);
        TypedModel.CopyStudentToTeacher();
        return report;
    }

    /// <summary>[B, 3, H, W] → the student's raw CAM [B, K, h, w].</summary>
    public override Tensor PatchGridMaps(Tensor images, LocalizationMapKind kind) => ToCoMethod.CamPatchGrid(TypedModel.Student.CamOnly, images, kind, Name);

    /// <summary>FSR's inference scales (infer_voc.py: 1.0, 1.25, 1.5 of the image, the same set as ToCo's).</summary>
    public IReadOnlyList<double> DecoderScales => ToCoMaps.SegmentationScales;

    /// <summary>ToCo's post-processing CRF (<see cref="DenseCrfConfig.ToCo"/>).</summary>
    public DenseCrfConfig DecoderCrf => DenseCrfConfig.ToCo;

    /// <summary>The student's LargeFOV decoder probabilities (ToCo's inference protocol): [K + 1, H, W].</summary>
    public Tensor SegmentationProbabilities(Tensor image, IReadOnlyList<double> scales, bool flip) =>
        ToCoMethod.DecoderProbabilities(x => TypedModel.Student.Forward(x).Segmentation, image, scales, flip);

    /// <summary>The student's multi-scale CAM (ToCo's protocol, flip always) at <paramref name="options"/>' scales, classes selected.</summary>
    public Tensor Localize(Tensor image, IReadOnlyList<int> classes, LocalizationOptions options) =>
        ToCoMethod.LocalizeCam(TypedModel.Student.CamOnly, image, classes, options, NumClasses, Name);
}
