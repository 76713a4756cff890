using TorchSharp;
using WeakSeg.Refinement;
using WeakSeg.Refinement.Saliency;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.AuxSegNet;

/// <summary>
/// AuxSegNet+ as an <see cref="IWsssMethod"/>. Loss: <see cref="AuxSegNetLoss.Compute"/>. Saliency: the batch's maps
/// (<see cref="TrainBatch.Saliency"/>, from <c>--saliency DIR</c> or a previous round) or, without them, estimated from the crop
/// (<see cref="SaliencyMaps.EstimateBatch"/>). Segmentation labels: the batch's pixel labels (<see cref="TrainBatch.Masks"/>, a label-updating
/// round's, used from the first step) or, without them, made online from the image labels only (never from masks) by the fusion rule
/// <see cref="AuxSegNetLabels.Fuse"/> of the model's own normalised CAM (detached) with the saliency, from
/// <see cref="AuxSegNetConfig.LabelStartStep"/> on; the official code reads both from files made before training (a pretrained
/// classifier's CAM, DSS saliency). Heads (named seg/sal/fc8) at <see cref="AuxSegNetConfig.HeadLearningRateScale"/>× the rate.
/// Maps: fused = the classifier's CAM; refined = the normalised CAM propagated once by the cross-task affinity (the label update).
/// Rounds (<see cref="ILabelRoundsMethod"/>): <see cref="AuxSegNetLabels.Update"/> with the saliency CRF. Its own segmentation
/// (<see cref="ISegmentationDecoderMethod"/>): the refined segmentation branch, as the reference's inference.
/// </summary>
public sealed class AuxSegNetMethod(AuxSegNetConfig config)
    : WsssMethodBase<AuxSegNetConfig, AuxSegNetNetwork>(config, new AuxSegNetNetwork(config)), ILabelRoundsMethod, ISegmentationDecoderMethod
{
    public const string MethodName = "auxsegnet";

    public override string Name => MethodName;
    public AuxSegNetNetwork Network => TypedModel;

    public override LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context)
    {
        var output = TypedModel.Forward(batch.Images);                    // its tensors belong to the step's scope
        if (batch.Masks is { } given)
            return AuxSegNetLoss.Compute(output, batch.Labels, given, batch.Saliency ?? SaliencyMaps.EstimateBatch(batch.Images), MethodConfig, withLabels: true);
        bool withLabels = context.Step >= MethodConfig.LabelStartStep;
        if (!withLabels) return AuxSegNetLoss.Compute(output, batch.Labels, output.Cam, output.Cam, MethodConfig, withLabels: false);
        var (labels, saliency) = OnlineLabels(output.Cam, batch.Images, batch.Labels, MethodConfig, batch.Saliency);
        return AuxSegNetLoss.Compute(output, batch.Labels, labels, saliency, MethodConfig, withLabels: true);
    }

    /// <summary>
    /// Labels of a batch from its images and image labels: saliency [B, H, W] (<paramref name="saliency"/>, or estimated from the images),
    /// and the fusion of the normalised CAM (bilinear to H×W, then ReLU and divided by each class's maximum) with it → ([B, H, W] int64, saliency).
    /// </summary>
    public static (Tensor Labels, Tensor Saliency) OnlineLabels(Tensor cam, Tensor images, Tensor imageLabels, AuxSegNetConfig config, Tensor? saliency = null)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var sal = saliency?.alias() ?? SaliencyMaps.EstimateBatch(images);
        var up = nn.functional.interpolate(cam.detach(), [images.shape[2], images.shape[3]], mode: InterpolationMode.Bilinear, align_corners: false);
        var labels = AuxSegNetLabels.Fuse(AuxSegNetLabels.NormalizeCam(up), sal, imageLabels, config.CamThreshold, config.SaliencyThreshold);
        return (labels.MoveToOuterDisposeScope(), sal.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The label update of one image (gen_pgt.py: single scale, no flip): <see cref="AuxSegNetLabels.Update"/> of the model's outputs with
    /// the given saliency, the updated saliency smoothed by <see cref="SaliencyCrf"/> on the image when <see cref="AuxSegNetConfig.SaliencyCrf"/>.
    /// </summary>
    public (byte[] Labels, float[] Saliency) NextRoundLabels(Tensor image, Tensor imageLabels, Tensor saliency)
    {
        if (image.dim() != 4 || image.shape[0] != 1) throw new WeakSegException($"label update: expected one image [1, 3, H, W], got [{string.Join(", ", image.shape)}]");
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var (h, w) = ((int)image.shape[2], (int)image.shape[3]);
        Func<Tensor, Tensor>? smooth = null;
        if (MethodConfig.SaliencyCrf)
        {
            var rgb = SaliencyMaps.RgbBytes(image);
            smooth = s => torch.tensor(SaliencyCrf.Refine(rgb, w, h, s.cpu().to_type(ScalarType.Float32).data<float>().ToArray()), [1, h, w]).to(s.device);
        }
        using var output = TypedModel.Forward(image);
        var (labels, newSaliency) = AuxSegNetLabels.Update(output, saliency.to_type(ScalarType.Float32), imageLabels.to_type(ScalarType.Float32),
            MethodConfig.CamThreshold, MethodConfig.SaliencyThreshold, smooth, predictedSaliency: MethodConfig.SaliencyAuxiliary);
        var bytes = labels.to_type(ScalarType.Byte).cpu().data<byte>().ToArray();
        return (bytes, newSaliency.cpu().to_type(ScalarType.Float32).data<float>().ToArray());
    }

    /// <summary>The reference's inference is single scale without flip.</summary>
    public IReadOnlyList<double> DecoderScales => [1.0];

    /// <summary>infer_AuxAff.py's optional CRF: Gaussian sxy 4 compat 3, bilateral sxy 83 srgb 5 compat 3, 10 iterations.</summary>
    public DenseCrfConfig DecoderCrf => DenseCrfConfig.MctFormerSeg;

    /// <summary>The refined segmentation logits upsampled bilinearly to the image, softmax; averaged over scales (and flips).</summary>
    public Tensor SegmentationProbabilities(Tensor image, IReadOnlyList<double> scales, bool flip)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var (h, w) = (image.shape[1], image.shape[2]);
        Tensor? sum = null;
        int count = 0;
        foreach (var scale in scales)
        {
            var input = image.unsqueeze(0);
            if (scale != 1.0)
                input = nn.functional.interpolate(input, [Math.Max(8, (long)Math.Round(h * scale)), Math.Max(8, (long)Math.Round(w * scale))],
                    mode: InterpolationMode.Bilinear, align_corners: false);
            foreach (var flipped in flip ? new[] { false, true } : [false])
            {
                using var output = TypedModel.Forward(flipped ? input.flip(3) : input);
                var probabilities = nn.functional.interpolate(output.RefinedSegmentation, [h, w], mode: InterpolationMode.Bilinear, align_corners: false).softmax(1);
                if (flipped) probabilities = probabilities.flip(3);
                sum = sum is null ? probabilities : sum.add(probabilities);
                count++;
            }
        }
        return sum!.div(count).squeeze(0).MoveToOuterDisposeScope();
    }

    public override double LearningRateScale(string parameterName) =>
        AuxSegNetNetwork.IsHeadParameter(parameterName) ? MethodConfig.HeadLearningRateScale : 1.0;

    /// <summary>[B, 3, H, W] → [B, K, H/8, W/8]: the raw CAM (fused) or the normalised CAM propagated by the cross-task affinity (refined).</summary>
    public override Tensor PatchGridMaps(Tensor images, LocalizationMapKind kind)
    {
        if (kind is not (LocalizationMapKind.Fused or LocalizationMapKind.Refined))
            throw new WeakSegException($"method '{Name}' has no {LocalizationMapKindNames.Name(kind)} map (it has: refined, fused)");
        using var output = TypedModel.Forward(images);
        if (kind == LocalizationMapKind.Fused || output.CrossTaskAffinity is null) return output.Cam.clone();
        return AuxSegNetAffinity.Propagate(output.CrossTaskAffinity, AuxSegNetLabels.NormalizeCam(output.Cam));
    }
}
