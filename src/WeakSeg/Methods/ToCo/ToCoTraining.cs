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
        if (wPtc > 0)
        {
            var grid = new[] { output.FeatureMap.shape[2], output.FeatureMap.shape[3] };
            var tokenCam = nn.functional.interpolate(auxCam, size: grid, mode: InterpolationMode.Bilinear, align_corners: false);
            var (_, tokenLabel) = ToCoPseudoLabels.CamToLabel(tokenCam, labels, config.TokenLabelOptions);
            var affinity = ToCoPseudoLabels.LabelToAffinityMask(tokenLabel);
            loss.Add("ptc", wPtc, ToCoLoss.MaskedPatchContrast(output.FeatureMap, affinity));
        }

        double wSeg = config.Segmentation.At(step);
        if (wSeg > 0)
        {
            var (validCam, _) = ToCoPseudoLabels.CamToLabel(cam, labels, config.TokenLabelOptions);
            var images01 = ToCoPseudoLabels.DenormalizeImages(images);
            var refined = ToCoPseudoLabels.RefineCamsWithBackground(par, images01, validCam, labels,
                config.HighThreshold, config.LowThreshold, imageBox: null, config.ParDownScale);
            var logits = nn.functional.interpolate(output.Segmentation, size: new[] { refined.shape[1], refined.shape[2] },
                mode: InterpolationMode.Bilinear, align_corners: false);
            var (background, foreground) = ToCoLoss.CountBackgroundForeground(refined);
            bool skip = config.SkipSegmentationWithoutBackgroundOrForeground
                        && config.SegmentationReduction == SegmentationLossReduction.Reference
                        && (background == 0 || foreground == 0);
            if (skip)
            {
                loss.Report("seg_skipped", torch.ones(1));
            }
            else
            {
                loss.Add("seg", wSeg, ToCoLoss.Segmentation(logits, refined, config.SegmentationReduction));
                loss.Report("seg_skipped", torch.zeros(1));
            }
        }

        return loss.ToLossTerms("ToCo", step);
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
