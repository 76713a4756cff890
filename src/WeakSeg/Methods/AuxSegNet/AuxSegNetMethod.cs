using TorchSharp;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Methods.AuxSegNet;

/// <summary>
/// AuxSegNet+ as an <see cref="IWsssMethod"/>. Loss: <see cref="AuxSegNetLoss.Compute"/>. Its segmentation and saliency labels are made
/// online for each batch, from image labels only (never from masks): saliency by <see cref="AuxSegNetSaliency.EstimateBatch"/> and the
/// segmentation label by the fusion rule <see cref="AuxSegNetLabels.Fuse"/> of the model's own normalised CAM (detached) with that
/// saliency; the official code reads both from files made before training (a pretrained classifier's CAM, DSS saliency).
/// Heads (named seg/sal/fc8) at <see cref="AuxSegNetConfig.HeadLearningRateScale"/>× the rate.
/// Maps: fused = the classifier's CAM; refined = the normalised CAM propagated once by the cross-task affinity (the label update).
/// </summary>
public sealed class AuxSegNetMethod(AuxSegNetConfig config)
    : WsssMethodBase<AuxSegNetConfig, AuxSegNetNetwork>(config, new AuxSegNetNetwork(config)), IWsssMethod
{
    public const string MethodName = "auxsegnet";

    public override string Name => MethodName;
    public AuxSegNetNetwork Network => TypedModel;

    public override LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context)
    {
        var output = TypedModel.Forward(batch.Images);                    // its tensors belong to the step's scope
        bool withLabels = context.Step >= MethodConfig.LabelStartStep;
        if (!withLabels) return AuxSegNetLoss.Compute(output, batch.Labels, output.Cam, output.Cam, MethodConfig, withLabels: false);
        var (labels, saliency) = OnlineLabels(output.Cam, batch.Images, batch.Labels, MethodConfig);
        return AuxSegNetLoss.Compute(output, batch.Labels, labels, saliency, MethodConfig, withLabels: true);
    }

    /// <summary>
    /// Labels of a batch from its images and image labels: saliency [B, H, W] estimated from the images, and the fusion of the
    /// normalised CAM (bilinear to H×W, then ReLU and divided by each class's maximum) with it → ([B, H, W] int64, saliency).
    /// </summary>
    public static (Tensor Labels, Tensor Saliency) OnlineLabels(Tensor cam, Tensor images, Tensor imageLabels, AuxSegNetConfig config)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var saliency = AuxSegNetSaliency.EstimateBatch(images);
        var up = nn.functional.interpolate(cam.detach(), [images.shape[2], images.shape[3]], mode: InterpolationMode.Bilinear, align_corners: false);
        var labels = AuxSegNetLabels.Fuse(AuxSegNetLabels.NormalizeCam(up), saliency, imageLabels, config.CamThreshold, config.SaliencyThreshold);
        return (labels.MoveToOuterDisposeScope(), saliency.MoveToOuterDisposeScope());
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
