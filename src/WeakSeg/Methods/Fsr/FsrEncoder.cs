using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Models;
using WeakSeg.Models.Vit;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Methods.Fsr;

/// <summary>What <see cref="FsrEncoder.Forward"/> returns.</summary>
/// <param name="Tokens">[B, 1 + N, D]: LayerNorm(concat(aggregated class token, patch tokens))</param>
/// <param name="AuxTokens">[B, N, D] patch tokens leaving the aux block (no norm)</param>
/// <param name="BlockTokens">[B, N, D] patch tokens leaving the last block (before the final norm)</param>
/// <param name="GridHeight">patch rows h</param>
/// <param name="GridWidth">patch columns w</param>
public sealed record FsrEncoderOutput(Tensor Tokens, Tensor AuxTokens, Tensor BlockTokens, int GridHeight, int GridWidth)
{
    /// <summary>Final patch tokens as a map [B, D, h, w].</summary>
    public Tensor PatchGrid() => ToGrid(Tokens.narrow(1, 1, Tokens.shape[1] - 1));

    /// <summary>Aux tokens as a map [B, D, h, w].</summary>
    public Tensor AuxGrid() => ToGrid(AuxTokens);

    Tensor ToGrid(Tensor tokens) => tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], GridHeight, GridWidth);
}

/// <summary>
/// FSR's ViT (models/vit.py VisionTransformer): the blocks run on patch tokens only — no class token. Where <c>mask</c> is true the
/// patch embedding is replaced by the learnable <c>mask_token</c> [1, D] before the patch rows of the position embedding are added
/// (its class row is never used; resized bicubically for another grid). After the blocks, the certain-feature aggregator
/// (<c>cls_blocks</c>, <see cref="CrossAttentionBlock"/>) turns <c>cls_token</c> into the aggregated token c, and the final norm
/// is applied to [c; patch tokens]. The aux output is the tokens leaving block <c>auxLayer</c>. Keys: the timm ViT keys plus
/// mask_token and cls_blocks.*.
/// </summary>
public sealed class FsrEncoder : VisionTransformer
{
    readonly Parameter mask_token;
    readonly ModuleList<CrossAttentionBlock> cls_blocks;
    readonly int _auxIndex;

    /// <param name="backbone">ViT shape with one class token (<see cref="FsrConfig.BackboneConfig"/>)</param>
    /// <param name="auxLayer">block of the aux output (negative = from the end)</param>
    /// <param name="aggregatorDepth">cross-attention blocks (2)</param>
    /// <param name="attentionMask">true: the aggregator ignores masked tokens (paper); false: it attends to all (released code)</param>
    /// <param name="layerScale">initial γ of the aggregator's layer scale, or null for none</param>
    /// <param name="pooling">how token 0 is made: the aggregator, or GAP / GMP of the unmasked patch tokens (ablation)</param>
    public FsrEncoder(VitConfig backbone, int auxLayer, int aggregatorDepth, bool attentionMask, double? layerScale = null,
        CertainTokenPooling pooling = CertainTokenPooling.Aggregator)
        : base(backbone, "FsrEncoder")
    {
        Pooling = pooling;
        _auxIndex = auxLayer < 0 ? backbone.Depth + auxLayer : auxLayer;
        if (_auxIndex < 0 || _auxIndex >= backbone.Depth)
            throw new WeakSegException($"AuxLayer {auxLayer} is outside the {backbone.Depth} blocks");
        AttentionMask = attentionMask;
        int d = backbone.EmbedDim;
        mask_token = new Parameter(torch.zeros(1, d));
        cls_blocks = new ModuleList<CrossAttentionBlock>();
        for (int i = 0; i < aggregatorDepth; i++)
            cls_blocks.Add(new CrossAttentionBlock(d, backbone.NumHeads, backbone.MlpRatio, backbone.QkvBias, backbone.LayerNormEps, layerScale));
        register_parameter(nameof(mask_token), mask_token);
        register_module(nameof(cls_blocks), cls_blocks);
        using (torch.no_grad())
        {
            WeightInit.TruncNormal_(mask_token, std: 0.02);
            foreach (var module in cls_blocks.modules())
            {
                if (module is Linear linear)
                {
                    WeightInit.TruncNormal_(linear.weight, std: 0.02);
                    if (linear.bias is not null) init.zeros_(linear.bias);
                }
            }
        }
    }

    /// <summary>How token 0 is made.</summary>
    public CertainTokenPooling Pooling { get; }

    /// <summary>Whether the aggregator ignores masked tokens.</summary>
    public bool AttentionMask { get; }

    /// <summary>The mask token [1, D].</summary>
    public Parameter MaskToken => mask_token;

    /// <summary>images [B, 3, H, W], mask [B, h, w] bool (true = masked) or null → tokens, aux tokens and the grid.</summary>
    public FsrEncoderOutput Forward(Tensor images, Tensor? mask = null)
    {
        if (images.dim() != 4 || images.shape[1] != Config.InChannels || images.shape[2] < PatchSize || images.shape[3] < PatchSize)
            throw new WeakSegException($"FSR encoder input must be [B, {Config.InChannels}, H ≥ {PatchSize}, W ≥ {PatchSize}]; got [{string.Join(", ", images.shape)}]");
        using var scope = torch.NewDisposeScope();
        long b = images.shape[0];
        var (h, w) = GridFor(images.shape[2], images.shape[3]);
        long n = (long)h * w;
        var x = PatchEmbedding.call(images);                                                     // [B, N, D]
        Tensor? masked = null;
        if (mask is not null)
        {
            if (mask.dim() != 3 || mask.shape[0] != b || mask.shape[1] != h || mask.shape[2] != w)
                throw new WeakSegException($"FSR mask must be [{b}, {h}, {w}] (batch × patch grid); got [{string.Join(", ", mask.shape)}]");
            masked = mask.to_type(ScalarType.Bool).reshape(b, n);
            x = torch.where(masked.unsqueeze(-1), mask_token.to_type(x.dtype).unsqueeze(0), x);
        }
        var position = PositionEmbeddingFor(h, w).narrow(1, 1, n);                              // patch rows only
        x = PositionDropout.call(StableScalars.Add(x, position));
        Tensor? aux = null;
        for (int i = 0; i < Blocks.Count; i++)
        {
            x = Blocks[i].call(x).Output;
            if (i == _auxIndex) aux = x;
        }
        var classToken = Pooling == CertainTokenPooling.Aggregator ? Aggregate(x, masked) : Pool(x, masked);
        var tokens = FinalNorm.call(torch.cat(new[] { classToken, x }, 1));
        return new FsrEncoderOutput(tokens.MoveToOuterDisposeScope(), aux!.MoveToOuterDisposeScope(), x.MoveToOuterDisposeScope(), h, w);
    }

    Tensor Aggregate(Tensor x, Tensor? masked)
    {
        var classToken = ClassTokenParameter.expand(x.shape[0], -1, -1);
        var attentionMask = AttentionMask ? masked : null;
        foreach (var block in cls_blocks) classToken = block.call(classToken, x, attentionMask);
        return classToken;
    }

    /// <summary>GAP / GMP over the unmasked tokens (all tokens without a mask): x [B, N, D] → [B, 1, D].</summary>
    Tensor Pool(Tensor x, Tensor? masked)
    {
        if (masked is null) return Pooling == CertainTokenPooling.Gap ? x.mean(new long[] { 1 }, keepdim: true) : x.amax(new long[] { 1 }, keepdim: true);
        var keep = masked.logical_not().unsqueeze(-1);                                            // [B, N, 1]
        if (Pooling == CertainTokenPooling.Gap)
        {
            using var one = 1.0.ToScalar();
            var weights = keep.to_type(x.dtype);
            return x.mul(weights).sum(1, keepdim: true).div(weights.sum(1, keepdim: true).clamp_min(one));
        }
        using var minusInfinity = double.NegativeInfinity.ToScalar();
        return x.masked_fill(keep.logical_not(), minusInfinity).amax(new long[] { 1 }, keepdim: true);
    }

    /// <summary>The unmasked forward (<see cref="Forward"/> without a mask) as a ViT output: class token = the aggregated token.</summary>
    public override VitOutput forward(Tensor images)
    {
        var output = Forward(images);
        long n = (long)output.GridHeight * output.GridWidth;
        return new VitOutput(output.Tokens.narrow(1, 0, 1), output.Tokens.narrow(1, 1, n), output.GridHeight, output.GridWidth, [], []);
    }
}
