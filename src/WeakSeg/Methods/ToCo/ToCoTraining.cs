using TorchSharp;
using WeakSeg.Models;
using WeakSeg.Refinement.Par;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.ToCo;

/// <summary>The ToCo training loss of one step (scripts/dist_train_voc_seg_neg.py: train), as one function.</summary>
public static class ToCoTraining
{
    /// <summary><see cref="StepTimings"/> section of the class-token contrast (views, local crops, extra encoder passes, heads, loss).</summary>
    public const string ClassContrastSection = "class-token contrast";

    /// <summary>
    /// Total loss for a batch at 0-based step <paramref name="step"/>:
    ///   w_cls·MLSM(cls) + w_aux·MLSM(cls_aux) + w_ptc·PTC + w_ctc·CTC + w_seg·SEG, each weight 0 before its start step (then the
    ///   term is not computed at all); CTC only with <see cref="ToCoConfig.UseCtc"/> (<see cref="ClassContrastTerm"/>, drawing its
    ///   views and crops from <paramref name="random"/>, the step's generator).
    /// CAM and aux CAM come from <see cref="ToCoMaps.MultiScaleCam"/> (no grad). PTC: the aux CAM is resized to the token grid,
    /// turned into two-threshold labels and <see cref="ToCoPseudoLabels.LabelToAffinityMask"/>; the loss acts on the final
    /// tokens. SEG: the CAM restricted to the image's classes is refined by PAR with two background levels
    /// (<see cref="ToCoPseudoLabels.RefineCamsWithBackground"/> on the denormalised images) and the decoder logits, upsampled
    /// to the crop, are scored with the balanced cross entropy. Parts: cls, cls_aux, ptc, ctc, seg, seg_skipped.
    /// images [B, 3, H, W] normalised with the ImageNet statistics, classLabels [B, C] multi-hot.
    /// </summary>
    public static LossTerms Loss(ToCoNetwork network, PixelAdaptiveRefinement par, Tensor images, Tensor classLabels, long step, Random random)
    {
        var config = network.Config;
        if (classLabels.dim() != 2 || classLabels.shape[0] != images.shape[0] || classLabels.shape[1] != config.NumClasses)
            throw new WeakSegException($"labels must be [{images.shape[0]}, {config.NumClasses}] (batch × classes); got [{string.Join(", ", classLabels.shape)}]");
        var labels = classLabels.to_type(ScalarType.Float32);
        var (cam, auxCam) = ToCoMaps.MultiScaleCam(network, images, config.CamScales);
        var output = network.call(images);

        var loss = new WeightedLossSum();

        double wCls = config.Classification.At(step);
        if (wCls > 0) loss.Add("cls", wCls, ToCoLoss.MultilabelSoftMargin(output.ClassLogits, labels));
        double wAux = config.AuxClassification.At(step);
        if (wAux > 0) loss.Add("cls_aux", wAux, ToCoLoss.MultilabelSoftMargin(output.AuxLogits, labels));

        double wPtc = config.PatchContrast.At(step);
        if (wPtc > 0) loss.Add("ptc", wPtc, PatchContrastTerm(output.FeatureMap, auxCam, labels, config.TokenLabelOptions));

        double wCtc = config.UseCtc ? config.ClassContrast.At(step) : 0.0;
        if (wCtc > 0) loss.Add("ctc", wCtc, ClassContrastTerm(network, images, auxCam, labels, output.ClassToken, random));

        double wSeg = config.Segmentation.At(step);
        if (wSeg > 0)
            AddSegmentation(loss, wSeg, par, images, cam, labels, output.Segmentation, config.TokenLabelOptions, config.ParDownScale,
                config.SegmentationReduction, config.SkipSegmentationWithoutBackgroundOrForeground);

        return loss.ToLossTerms("ToCo", step);
    }

    /// <summary>
    /// PTC term: the aux CAM is resized to the token grid, turned into two-threshold labels (<paramref name="labelOptions"/>)
    /// and <see cref="ToCoPseudoLabels.LabelToAffinityMask"/>; the loss acts on <paramref name="featureMap"/> [B, D, h, w].
    /// </summary>
    public static Tensor PatchContrastTerm(Tensor featureMap, Tensor auxCam, Tensor labels, CamLabelOptions labelOptions)
    {
        var grid = new[] { featureMap.shape[2], featureMap.shape[3] };
        var tokenCam = nn.functional.interpolate(auxCam, size: grid, mode: InterpolationMode.Bilinear, align_corners: false);
        var (_, tokenLabel) = ToCoPseudoLabels.CamToLabel(tokenCam, labels, labelOptions);
        var affinity = ToCoPseudoLabels.LabelToAffinityMask(tokenLabel);
        return ToCoLoss.MaskedPatchContrast(featureMap, affinity);
    }

    /// <summary>
    /// CTC term (dist_train_voc_seg_neg.py with model_seg_neg.py forward_proj and losses.py CTCLoss_neg). Views: v0 = the training
    /// images (their class tokens <paramref name="classToken"/> come from the step's main forward, which equals the reference's
    /// separate pass), v1 = <see cref="ToCoConfig.GlobalView"/> of them, and <see cref="ToCoConfig.LocalCropCount"/> local crops per
    /// image cut from a <see cref="ToCoConfig.LocalView"/> copy (<see cref="LocalCrops"/>: placed on the region map of
    /// <paramref name="auxCam"/> [B, C, H, W], flagged negative where the crop is mostly background). Then the teacher head takes
    /// one EMA step (before its forward, as the reference), sees the detached class tokens of v0 and v1, and the student head the
    /// class tokens of v0, v1 and the crops; <see cref="ToCoLoss.ClassTokenContrast"/> scores them. Draws come from
    /// <paramref name="random"/> in a fixed order (v1, the local source, the crop centres), so a resumed run repeats them.
    /// </summary>
    public static Tensor ClassContrastTerm(ToCoNetwork network, Tensor images, Tensor auxCam, Tensor labels, Tensor classToken, Random random)
    {
        var config = network.Config;
        if (network.Projector is null || network.TeacherProjector is null)
            throw new WeakSegException("this ToCo network was built without class-token contrast (model.use_ctc=false)");
        using var timing = StepTimings.Section(ClassContrastSection);
        using var scope = torch.NewDisposeScope();
        var globalView = RandomViews.View(images, random, config.GlobalView);
        var crops = ClassContrastLocalCrops(config, images, auxCam, labels, random);

        network.UpdateTeacherProjector();
        var globalTokens = torch.cat(new[] { classToken, network.ClassToken(globalView) }, 0);                  // [2B, D], view-major
        Tensor teacher;
        using (torch.no_grad()) teacher = network.TeacherProjector.call(globalTokens.detach());                  // [2B, K]
        var localTokens = network.ClassToken(crops.Crops);                                                      // [n·B, D]
        var student = network.Projector.call(torch.cat(new[] { globalTokens, localTokens }, 0));                // [(n + 2)·B, K]
        return ToCoLoss.ClassTokenContrast(student, teacher, crops.Flags, config.ClassContrastTemperature, config.ClassContrastVariant)
            .MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The local crops of the class-token contrast: a <see cref="ToCoConfig.LocalView"/> copy of <paramref name="images"/> (not flipped
    /// when <see cref="ToCoConfig.LocalViewFlipsIndependently"/> is off), cut by <see cref="LocalCrops.Crop"/> where the region map of
    /// <paramref name="auxCam"/> [B, C, H, W] (thresholds <see cref="ToCoConfig.LowThreshold"/>, <see cref="ToCoConfig.HighThreshold"/>)
    /// allows; the crop side is <see cref="ToCoConfig.LocalCropSizeFor"/> the images' shorter side.
    /// </summary>
    public static LocalCropSet ClassContrastLocalCrops(ToCoConfig config, Tensor images, Tensor auxCam, Tensor labels, Random random)
    {
        using var scope = torch.NewDisposeScope();
        var localOptions = config.LocalViewFlipsIndependently ? config.LocalView : config.LocalView with { HorizontalFlipProbability = 0.0 };
        var localSource = RandomViews.View(images, random, localOptions);
        var region = LocalCrops.RegionOfInterest(auxCam, labels, config.LowThreshold, config.HighThreshold);
        int size = config.LocalCropSizeFor(Math.Min(images.shape[2], images.shape[3]));
        var crops = LocalCrops.Crop(localSource, region, config.LocalCropCount, size, config.NegativeCropMeanRegion, random);
        return crops.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// SEG term: the CAM restricted to the image's classes is refined by PAR with two background levels (the band of
    /// <paramref name="labelOptions"/>) on the denormalised images, and the decoder logits, upsampled to the crop, are scored
    /// with the balanced cross entropy. With the reference reduction and <paramref name="skipWithoutBackgroundOrForeground"/>,
    /// a batch whose labels lack background or foreground adds no term; the part "seg_skipped" reports 1 then, else 0.
    /// </summary>
    public static void AddSegmentation(WeightedLossSum loss, double weight, PixelAdaptiveRefinement par, Tensor images, Tensor cam,
        Tensor labels, Tensor segmentationLogits, CamLabelOptions labelOptions, int parDownScale, SegmentationLossReduction reduction,
        bool skipWithoutBackgroundOrForeground)
    {
        var (validCam, _) = ToCoPseudoLabels.CamToLabel(cam, labels, labelOptions);
        var images01 = ToCoPseudoLabels.DenormalizeImages(images);
        var refined = ToCoPseudoLabels.RefineCamsWithBackground(par, images01, validCam, labels,
            labelOptions.High, labelOptions.Low, imageBox: null, parDownScale);
        var logits = nn.functional.interpolate(segmentationLogits, size: new[] { refined.shape[1], refined.shape[2] },
            mode: InterpolationMode.Bilinear, align_corners: false);
        var (background, foreground) = ToCoLoss.CountBackgroundForeground(refined);
        bool skip = skipWithoutBackgroundOrForeground && reduction == SegmentationLossReduction.Reference
                    && (background == 0 || foreground == 0);
        if (skip)
        {
            loss.Report("seg_skipped", torch.ones(1));
            return;
        }
        loss.Add("seg", weight, ToCoLoss.Segmentation(logits, refined, reduction));
        loss.Report("seg_skipped", torch.zeros(1));
    }
}

/// <summary>
/// Adapter to the shared <see cref="Trainer"/>: trains every parameter of the network with <see cref="ToCoTraining.Loss"/>;
/// the classifiers and the decoder get <see cref="ToCoConfig.HeadLearningRateScale"/> × the scheduled rate. Use
/// <see cref="ToCoConfig.ToTrainerOptions"/> for the official optimiser and schedule.
/// </summary>
public sealed class ToCoTrainable(ToCoNetwork network) : ITrainable
{
    readonly PixelAdaptiveRefinement _par = new(network.Config.Par);

    public nn.Module Model => network;

    public ToCoNetwork Network => network;

    public LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context) =>
        ToCoTraining.Loss(network, _par, batch.Images, batch.Labels, context.Step, context.Random);

    public double LearningRateScale(string parameterName) =>
        network.IsHeadParameter(parameterName) ? network.Config.HeadLearningRateScale : 1.0;
}
