using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Models;
using WeakSeg.Models.Vit;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Segmentation;

/// <summary>
/// Segmenter-style mask-transformer decoder with one learned query per class (K + 1 incl. background), the head of WeakTr's
/// gradient-clipping decoder (WeakTr Eq. 8). For encoder patch tokens [B, N, D_enc] on an h×w grid:
/// <code>
///   x        = [proj_dec(T) ; cls_emb]                    [B, N + C, D]   (C = K + 1 learned class embeddings)
///   x        = decoder_norm(blocks(x))                     pre-norm transformer blocks (the backbone's <see cref="Block"/>)
///   T̂, Q̂     = x[:, :N] · proj_patch, x[:, N:] · proj_classes
///   T̂_norm, Q̂_norm = T̂/‖T̂‖₂, Q̂/‖Q̂‖₂                       L2 over D, per token and per class
///   masks    = mask_norm(T̂_norm · Q̂_normᵀ)                 [B, N, C]; mask_norm = LayerNorm over the C classes (affine)
/// </code>
/// returned as a [B, C, h, w] grid; <see cref="SegmenterModel"/> upsamples it bilinearly to the input size.
/// Official: no 1/√D on the cosine (D^−½ only initialises proj_patch/proj_classes). WeakTr's Eq. 8 writes /√D; that variant is
/// <c>scaleBySqrtDim</c> (the LayerNorm over classes removes a constant scale only up to its ε, so the two differ slightly).
/// </summary>
public sealed class MaskTransformerDecoder : Module<Tensor, Tensor>
{
    readonly Linear proj_dec;
    readonly Parameter cls_emb;
    readonly ModuleList<Block> blocks;
    readonly LayerNorm decoder_norm;
    readonly Parameter proj_patch;
    readonly Parameter proj_classes;
    readonly LayerNorm mask_norm;
    readonly double _invSqrtDim;
    readonly double _maskScale;

    /// <param name="encoderDim">width of the encoder's patch tokens</param>
    /// <param name="dim">decoder width D</param>
    /// <param name="numClasses">C = K + 1 output classes (background included)</param>
    /// <param name="scaleBySqrtDim">divide the cosines by √D (paper Eq. 8); false = official</param>
    public MaskTransformerDecoder(int encoderDim, int dim, int heads, int layers, int numClasses, double dropout = 0.1, double layerNormEps = 1e-5,
        bool scaleBySqrtDim = false)
        : base(nameof(MaskTransformerDecoder))
    {
        NumClasses = numClasses;
        Dim = dim;
        _invSqrtDim = 1.0 / Math.Sqrt(dim);
        _maskScale = scaleBySqrtDim ? _invSqrtDim : 1.0;
        proj_dec = Linear(encoderDim, dim);
        cls_emb = new Parameter(torch.zeros(1, numClasses, dim));
        blocks = new ModuleList<Block>();
        for (int i = 0; i < layers; i++) blocks.Add(new Block(dim, heads, 4.0, true, layerNormEps, dropout, 0.0, 0.0));
        decoder_norm = LayerNorm(dim, eps: layerNormEps);
        proj_patch = new Parameter(torch.randn(dim, dim).mul_(_invSqrtDim));
        proj_classes = new Parameter(torch.randn(dim, dim).mul_(_invSqrtDim));
        mask_norm = LayerNorm(numClasses, eps: layerNormEps);
        RegisterComponents();
        // trunc-normal(0.02) class embeddings and Linear weights, zero biases (Segmenter/timm init)
        using var _ = torch.no_grad();
        WeightInit.TruncNormal_(cls_emb, std: 0.02);
        foreach (var m in modules())
            if (m is Linear linear)
            {
                WeightInit.TruncNormal_(linear.weight!, std: 0.02);
                linear.bias?.zero_();
            }
    }

    /// <summary>C = K + 1.</summary>
    public int NumClasses { get; }

    /// <summary>Decoder width D.</summary>
    public int Dim { get; }

    /// <summary>Factor on the patch-class cosines before the class LayerNorm: 1 (official) or 1/√D (paper Eq. 8).</summary>
    public double MaskScale => _maskScale;

    /// <summary>Patch tokens [B, N, D_enc] (N = h·w, row-major) → class masks [B, C, h, w] (before upsampling).</summary>
    public Tensor Forward(Tensor patchTokens, int gridHeight, int gridWidth)
    {
        using var scope = torch.NewDisposeScope();
        long b = patchTokens.shape[0], n = patchTokens.shape[1];
        if (n != (long)gridHeight * gridWidth) throw new ArgumentException($"{n} patch tokens do not fill a {gridHeight}×{gridWidth} grid");
        var x = torch.cat(new[] { proj_dec.call(patchTokens), cls_emb.expand(b, -1, -1) }, 1);   // [B, N + C, D]
        foreach (var block in blocks) x = block.call(x).Output;
        x = decoder_norm.call(x);
        var patches = torch.matmul(x.narrow(1, 0, n), proj_patch);                                // [B, N, D]
        var classes = torch.matmul(x.narrow(1, n, NumClasses), proj_classes);                     // [B, C, D]
        var masks = ClassMasks(patches, classes, _maskScale);                                      // [B, N, C]
        masks = mask_norm.call(masks);
        return masks.transpose(1, 2).reshape(b, NumClasses, gridHeight, gridWidth).MoveToOuterDisposeScope();
    }

    public override Tensor forward(Tensor patchTokens)
    {
        int side = (int)Math.Round(Math.Sqrt(patchTokens.shape[1]));
        return Forward(patchTokens, side, side);
    }

    /// <summary>T̂_norm · Q̂_normᵀ · scale: cosine similarity of every token with every class query, times <paramref name="scale"/>.
    /// patches [B, N, D], classes [B, C, D] → [B, N, C]. L2 normalisation with ε = 1e-12 (F.normalize).</summary>
    public static Tensor ClassMasks(Tensor patches, Tensor classes, double scale)
    {
        var t = nn.functional.normalize(patches, p: 2, dim: -1);
        var q = nn.functional.normalize(classes, p: 2, dim: -1);
        var cosines = torch.matmul(t, q.transpose(1, 2));
        return scale == 1.0 ? cosines : cosines.mul(scale);
    }
}
