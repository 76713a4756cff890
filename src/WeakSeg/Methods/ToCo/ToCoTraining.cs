using TorchSharp;
using WeakSeg.Models;
using WeakSeg.Refinement.Par;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.ToCo;

/// <summary>The ToCo training loss of one step (scripts/dist_train_voc_seg_neg.py: train), as one function.</summary>
public static class ToCoTraining
{
    /// <summary>
    /// Total loss for a batch at 0-based step <paramref name="step"/>:
    ///   w_cls·MLSM(cls) + w_aux·MLSM(cls_aux) + w_ptc·PTC + w_seg·SEG, each weight 0 before its start step (then the term is
    ///   not computed at all).
    /// CAM and aux CAM come from <see cref="ToCoMaps.MultiScaleCam"/> (no grad). PTC: the aux CAM is resized to the token grid,
    /// turned into two-threshold labels and <see cref="ToCoPseudoLabels.LabelToAffinityMask"/>; the loss acts on the final
    /// tokens. SEG: the CAM restricted to the image's classes is refined by PAR with two background levels
    /// (<see cref="ToCoPseudoLabels.RefineCamsWithBackground"/> on the denormalised images) and the decoder logits, upsampled
    /// to the crop, are scored with the balanced cross entropy. Parts: cls, cls_aux, ptc, seg, seg_skipped.
    /// images [B, 3, H, W] normalised with the ImageNet statistics, classLabels [B, C] multi-hot.
    /// </summary>
    public static LossTerms Loss(ToCoNetwork network, PixelAdaptiveRefinement par, Tensor images, Tensor classLabels, long step)
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
        ToCoTraining.Loss(network, _par, batch.Images, batch.Labels, context.Step);

    public double LearningRateScale(string parameterName) =>
        network.IsHeadParameter(parameterName) ? network.Config.HeadLearningRateScale : 1.0;
}
