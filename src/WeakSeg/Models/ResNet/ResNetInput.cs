using TorchSharp;
using static TorchSharp.torch;

namespace WeakSeg.Models.ResNet;

/// <summary>How the packaged ResNet-18 subtracts its mean: the exact 1×3×224×224 mean image, or its per-channel means (any size).</summary>
public enum MeanSubtraction
{
    /// <summary>The prep graph's mean image, bilinearly resized when the input is not 224×224 (exact at 224×224).</summary>
    MeanImage,
    /// <summary>One mean per channel (the mean image averaged over pixels).</summary>
    ChannelMeans,
}

/// <summary>
/// The input the packaged ImageNet ResNet-18 expects (its prep graph <c>ResNetPreprocess.onnx</c>): channels in <b>BGR</b> order,
/// on the <b>0–255</b> scale, minus a mean image (no division by a std). The mean image is nearly constant per channel, so
/// <see cref="ChannelMeansBgr"/> serves other input sizes.
/// </summary>
public static class ResNetInput
{
    /// <summary>Per-channel means of the prep graph's mean image in B, G, R order (pixel averages of <c>MeanImage</c>; a test
    /// recomputes them from the packaged file).</summary>
    public static readonly (float B, float G, float R) ChannelMeansBgr = (103.06262f, 115.90288f, 123.15163f);

    /// <summary>WeakSeg's data pipeline input: RGB in [0, 1] minus the ImageNet mean, divided by the ImageNet std (timm's
    /// IMAGENET_DEFAULT_MEAN/STD, as in <c>TrainTransform</c> and <c>EvalTransform</c>).</summary>
    public static readonly (float R, float G, float B) ImageNetMean = (0.485f, 0.456f, 0.406f);
    public static readonly (float R, float G, float B) ImageNetStd = (0.229f, 0.224f, 0.225f);

    /// <summary>RGB images on the 0–255 scale [B, 3, H, W] → the network input: BGR minus <paramref name="meanImageBgr"/>
    /// ([1, 3, h, w], resized bilinearly to H×W when it differs) or, when null, minus <see cref="ChannelMeansBgr"/>.</summary>
    public static Tensor FromRgb255(Tensor rgb255, Tensor? meanImageBgr = null)
    {
        CheckImages(rgb255);
        using var scope = torch.NewDisposeScope();
        var bgr = rgb255.flip(1);
        Tensor mean;
        if (meanImageBgr is null)
            mean = torch.tensor(new[] { ChannelMeansBgr.B, ChannelMeansBgr.G, ChannelMeansBgr.R }, device: rgb255.device).reshape(1, 3, 1, 1);
        else if (meanImageBgr.shape[2] == rgb255.shape[2] && meanImageBgr.shape[3] == rgb255.shape[3])
            mean = meanImageBgr.to(rgb255.device);
        else
            mean = nn.functional.interpolate(meanImageBgr.to(rgb255.device), [rgb255.shape[2], rgb255.shape[3]], mode: InterpolationMode.Bilinear, align_corners: false);
        return bgr.sub(mean).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// WeakSeg-normalised RGB ([B, 3, H, W], ImageNet mean/std) → the network input with <see cref="ChannelMeansBgr"/>:
    /// out[B,G,R] = (x · std + mean) · 255 − means. One affine map per channel, so a hybrid backbone takes the data pipeline's
    /// tensors unchanged (padding of 0 = the ImageNet mean colour maps to ≈ 0 here too).
    /// </summary>
    public static Tensor FromImageNetNormalised(Tensor normalisedRgb)
    {
        CheckImages(normalisedRgb);
        using var scope = torch.NewDisposeScope();
        var (scale, shift) = ImageNetToBgrAffine();
        using var s = torch.tensor(scale, device: normalisedRgb.device).reshape(1, 3, 1, 1);
        using var t = torch.tensor(shift, device: normalisedRgb.device).reshape(1, 3, 1, 1);
        return normalisedRgb.flip(1).mul(s).add(t).MoveToOuterDisposeScope();
    }

    /// <summary>Per output channel (B, G, R): scale and shift such that out = flip(x) · scale + shift.</summary>
    public static (float[] Scale, float[] Shift) ImageNetToBgrAffine()
    {
        float[] std = [ImageNetStd.B, ImageNetStd.G, ImageNetStd.R];
        float[] mean = [ImageNetMean.B, ImageNetMean.G, ImageNetMean.R];
        float[] cnnMean = [ChannelMeansBgr.B, ChannelMeansBgr.G, ChannelMeansBgr.R];
        var scale = new float[3];
        var shift = new float[3];
        for (int c = 0; c < 3; c++)
        {
            scale[c] = (float)(255.0 * std[c]);
            shift[c] = (float)(255.0 * mean[c] - cnnMean[c]);
        }
        return (scale, shift);
    }

    static void CheckImages(Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] != 3)
            throw new WeakSegException($"ResNet input must be [B, 3, H, W]; got [{string.Join(", ", images.shape)}]");
    }
}
