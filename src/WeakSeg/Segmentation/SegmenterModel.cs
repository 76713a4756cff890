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
public sealed class SegmenterModel : Module<Tensor, Tensor>
{
    readonly VisionTransformer encoder;
    readonly MaskTransformerDecoder decoder;

    public SegmenterModel(SegmentationConfig config) : base("Segmenter")
    {
        config.EnsureValid();
        Config = config;
        var enc = config.EncoderConfig;
        encoder = new VisionTransformer(enc, "encoder");
        decoder = new MaskTransformerDecoder(enc.EmbedDim, config.ResolvedDecoderDim, config.ResolvedDecoderHeads, config.DecoderLayers,
            config.NumClasses + 1, config.DecoderDropout);
        RegisterComponents();
    }

    public SegmentationConfig Config { get; }

    /// <summary>The ViT encoder (load timm weights into it with <c>TimmWeightImport.LoadFile(model.Encoder, path)</c>).</summary>
    public VisionTransformer Encoder => encoder;

    public MaskTransformerDecoder Decoder => decoder;

    /// <summary>C = K + 1 output classes.</summary>
    public int NumOutputClasses => decoder.NumClasses;

    /// <summary>Images [B, 3, H, W] (H, W multiples of the patch size) → logits [B, K+1, H, W].</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        int p = encoder.PatchSize;
        if (images.dim() != 4 || images.shape[2] % p != 0 || images.shape[3] % p != 0)
            throw new WeakSegException($"segmenter input must be [B, 3, H, W] with H and W multiples of {p}; got [{string.Join(", ", images.shape)}]");
        using var features = encoder.ForwardFeatures(images);
        var grid = decoder.Forward(features.PatchTokens, features.GridHeight, features.GridWidth);     // [B, C, h, w]
        var logits = nn.functional.interpolate(grid, size: new[] { images.shape[2], images.shape[3] },
            mode: InterpolationMode.Bilinear, align_corners: false);
        return logits.MoveToOuterDisposeScope();
    }
}
