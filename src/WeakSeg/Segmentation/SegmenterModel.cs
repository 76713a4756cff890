using TorchSharp;
using WeakSeg.Models.Vit;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Segmentation;

/// <summary>
/// WeakTr's online-retraining network: a plain ViT encoder (timm layout, one class token, final norm applied — Segmenter
/// uses forward_features and drops the class token) and a <see cref="MaskTransformerDecoder"/>. Checkpoint keys:
/// <c>encoder.*</c> (timm names) and <c>decoder.*</c>. Output: per-pixel class logits [B, K+1, H, W], bilinearly upsampled
/// (align_corners false) from the patch grid to the input size.
/// </summary>
public sealed class SegmenterModel : SegmentationNetwork
{
    readonly VisionTransformer encoder;
    readonly MaskTransformerDecoder decoder;
    readonly SegmentationConfig config;

    public SegmenterModel(SegmentationConfig config) : base("Segmenter")
    {
        config.EnsureValid();
        if (config.Model != SegmentationModel.Segmenter) throw new WeakSegException($"SegmenterModel needs Model = segmenter (got {SegmentationModels.Name(config.Model)})");
        this.config = config;
        var enc = config.EncoderConfig;
        encoder = new VisionTransformer(enc, "encoder");
        decoder = new MaskTransformerDecoder(enc.EmbedDim, config.ResolvedDecoderDim, config.ResolvedDecoderHeads, config.DecoderLayers,
            config.NumClasses + 1, config.DecoderDropout, config.LayerNormEps, config.ScaleMasksBySqrtDim);
        RegisterComponents();
    }

    public override SegmentationConfig Config => config;

    public override string EncoderPrefix => "encoder.";

    /// <summary>The ViT encoder (load timm weights into it with <c>TimmWeightImport.LoadFile(model.Encoder, path)</c>).</summary>
    public override VisionTransformer Encoder => encoder;

    public MaskTransformerDecoder Decoder => decoder;

    /// <summary>
    /// Images [B, 3, H, W] → logits [B, K+1, H, W]. As the official Segmenter: the images are padded with zeros at the right and bottom
    /// to multiples of the patch size, the decoder grid is upsampled bilinearly to the padded size and cropped back to H×W.
    /// </summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        int p = encoder.PatchSize;
        if (images.dim() != 4 || images.shape[2] < 1 || images.shape[3] < 1)
            throw new WeakSegException($"segmenter input must be [B, 3, H, W]; got [{string.Join(", ", images.shape)}]");
        long h = images.shape[2], w = images.shape[3];
        long padBottom = (p - h % p) % p, padRight = (p - w % p) % p;
        var padded = padBottom == 0 && padRight == 0 ? images : nn.functional.pad(images, new long[] { 0, padRight, 0, padBottom });
        using var features = encoder.ForwardFeatures(padded);
        var grid = decoder.Forward(features.PatchTokens, features.GridHeight, features.GridWidth);     // [B, C, h/p, w/p]
        var logits = nn.functional.interpolate(grid, size: new[] { h + padBottom, w + padRight },
            mode: InterpolationMode.Bilinear, align_corners: false);
        if (padBottom != 0 || padRight != 0) logits = logits.narrow(2, 0, h).narrow(3, 0, w);
        return logits.MoveToOuterDisposeScope();
    }
}
