using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

using WeakSeg.Models;

namespace WeakSeg.Models.Vit;

/// <summary>
/// timm/DeiT-style vision transformer with C class tokens (C = 1: plain ViT; C = classes: MCTformer).
/// Tokens = [cls_token ; patch_embed(x)] + pos_embed (one embedding [1, C+N, D] added after concatenation; with
/// <see cref="VitConfig.SeparatePositionEmbeddings"/> the class tokens add <c>pos_embed_cls</c> [1, C, D] and the patches
/// <c>pos_embed_pat</c> [1, N, D] instead), then <c>blocks</c>, optionally the final <c>norm</c>. Parameter names are the timm checkpoint keys.
/// Methods derive from this class and register their heads with <c>register_module</c>, so their keys stay flat (<c>head.weight</c>).
/// </summary>
public class VisionTransformer : Module<Tensor, VitOutput>
{
    readonly Module<Tensor, Tensor> patch_embed;   // PatchEmbed, or HybridEmbed for a ResNet stem (Config.Stem)
    readonly Parameter cls_token;
    readonly Parameter? pos_embed;        // joint layout
    readonly Parameter? pos_embed_cls;    // separate layout: class rows
    readonly Parameter? pos_embed_pat;    // separate layout: patch rows
    readonly Dropout pos_drop;
    readonly ModuleList<Block> blocks;
    readonly LayerNorm norm;

    public VisionTransformer(VitConfig config, string name = nameof(VisionTransformer)) : base(name)
    {
        config.EnsureValid();
        Config = config;
        int d = config.EmbedDim;
        int n = config.GridSize * config.GridSize;
        patch_embed = config.Stem == VitStem.Patch ? new PatchEmbed(config.PatchSize, config.InChannels, d) : new HybridEmbed(config);
        cls_token = new Parameter(torch.zeros(1, config.NumClassTokens, d));
        if (config.SeparatePositionEmbeddings)
        {
            pos_embed_cls = new Parameter(torch.zeros(1, config.NumClassTokens, d));
            pos_embed_pat = new Parameter(torch.zeros(1, n, d));
        }
        else
        {
            pos_embed = new Parameter(torch.zeros(1, config.NumClassTokens + n, d));
        }
        pos_drop = Dropout(config.DropRate);
        blocks = new ModuleList<Block>();
        for (int i = 0; i < config.Depth; i++)
        {
            double dropPath = config.Depth == 1 ? 0 : config.DropPathRate * i / (config.Depth - 1);   // linear rule (timm)
            blocks.Add(new Block(d, config.NumHeads, config.MlpRatio, config.QkvBias, config.LayerNormEps, config.DropRate, config.AttnDropRate, dropPath));
        }
        norm = LayerNorm(d, eps: config.LayerNormEps);
        RegisterComponents();
        InitializeWeights();
    }

    public VitConfig Config { get; }
    public int NumClassTokens => Config.NumClassTokens;
    public int EmbedDim => Config.EmbedDim;
    public int PatchSize => Config.PatchSize;
    public int Depth => Config.Depth;

    /// <summary>The class tokens parameter [1, C, D].</summary>
    public Parameter ClassTokenParameter => cls_token;

    /// <summary>The position embedding parameter [1, C+N, D] (joint layout).</summary>
    /// <exception cref="WeakSegException">the backbone has separate class and patch position embeddings</exception>
    public Parameter PositionEmbeddingParameter => pos_embed
        ?? throw new WeakSegException("this backbone has separate class and patch position embeddings (pos_embed_cls, pos_embed_pat), not one pos_embed");

    /// <summary>Separate layout: the class tokens' position embedding [1, C, D]; null for the joint layout.</summary>
    public Parameter? ClassPositionEmbeddingParameter => pos_embed_cls;

    /// <summary>Separate layout: the patches' position embedding [1, N, D] on the training grid; null for the joint layout.</summary>
    public Parameter? PatchPositionEmbeddingParameter => pos_embed_pat;

    /// <summary>The patch embedding (image → [B, N, D] tokens), for subclasses that assemble the token sequence themselves.</summary>
    protected Module<Tensor, Tensor> PatchEmbedding => patch_embed;

    /// <summary>The dropout applied after the position embedding.</summary>
    protected Dropout PositionDropout => pos_drop;

    /// <summary>The transformer blocks in order.</summary>
    protected ModuleList<Block> Blocks => blocks;

    /// <summary>The final LayerNorm.</summary>
    protected LayerNorm FinalNorm => norm;

    /// <summary>timm init: truncated normal (std 0.02) for tokens, position embedding and Linear weights; zero Linear biases; LayerNorm 1/0.</summary>
    void InitializeWeights()
    {
        using var _ = torch.no_grad();
        foreach (var position in new[] { pos_embed, pos_embed_cls, pos_embed_pat })
            if (position is not null) WeightInit.TruncNormal_(position, std: 0.02);
        WeightInit.TruncNormal_(cls_token, std: 0.02);
        foreach (var module in modules())
        {
            if (module is Linear linear)
            {
                WeightInit.TruncNormal_(linear.weight, std: 0.02);
                if (linear.bias is not null) init.zeros_(linear.bias);
            }
            else if (module is LayerNorm layerNorm)
            {
                if (layerNorm.weight is not null) init.ones_(layerNorm.weight);
                if (layerNorm.bias is not null) init.zeros_(layerNorm.bias);
            }
        }
    }

    /// <summary>
    /// The position embedding for a patch grid, [1, C + h·w, D], using <see cref="VitConfig.PositionEmbeddingResize"/> (separate layout:
    /// the class rows, then the resized patch rows).
    /// </summary>
    public Tensor PositionEmbeddingFor(int gridHeight, int gridWidth)
    {
        if (pos_embed is not null) return PositionEmbedding.Resize(pos_embed, NumClassTokens, gridHeight, gridWidth, Config.PositionEmbeddingResize);
        using var patches = PositionEmbedding.Resize(pos_embed_pat!, 0, gridHeight, gridWidth, Config.PositionEmbeddingResize);
        return torch.cat(new Tensor[] { pos_embed_cls!, patches }, 1);
    }

    /// <summary>Patch grid (h, w) for an input of the given size.</summary>
    public (int Height, int Width) GridFor(long imageHeight, long imageWidth) => ((int)(imageHeight / PatchSize), (int)(imageWidth / PatchSize));

    void CheckInput(Tensor images)
    {
        if (images.dim() != 4 || images.shape[1] != Config.InChannels)
            throw new WeakSegException($"ViT input must be [B, {Config.InChannels}, H, W]; got [{string.Join(", ", images.shape)}]");
        if (images.shape[2] < PatchSize || images.shape[3] < PatchSize)
            throw new WeakSegException($"ViT input {images.shape[2]}×{images.shape[3]} is smaller than one {PatchSize}×{PatchSize} patch");
    }

    /// <summary>Tokens entering the first block: [cls ; patches] + position embedding, after dropout. [B, C+N, D].</summary>
    public Tensor EmbedTokens(Tensor images)
    {
        CheckInput(images);
        var (h, w) = GridFor(images.shape[2], images.shape[3]);
        var patches = patch_embed.call(images);                                        // [B, N, D]
        var classTokens = cls_token.expand(images.shape[0], -1, -1);                   // [B, C, D]
        var tokens = torch.cat(new[] { classTokens, patches }, 1);                     // [B, C+N, D]
        return pos_drop.call(StableScalars.Add(tokens, PositionEmbeddingFor(h, w)));   // not `+`: see StableScalars
    }

    VitOutput Run(Tensor images, bool applyFinalNorm) => Run(images, applyFinalNorm, -1, out _);

    VitOutput Run(Tensor images, bool applyFinalNorm, int captureBlock, out Tensor? captured)
    {
        using var scope = torch.NewDisposeScope();
        var (h, w) = GridFor(images.shape[2], images.shape[3]);
        var x = EmbedTokens(images);
        var attentions = new List<Tensor>(Depth);
        var attentionOutputs = new List<Tensor>(Depth);
        var blockClassTokens = new List<Tensor>(Depth);
        int c = NumClassTokens;
        captured = null;
        for (int i = 0; i < blocks.Count; i++)
        {
            var result = blocks[i].call(x);
            x = result.Output;
            attentions.Add(result.Weights);
            attentionOutputs.Add(result.AttentionOutput);
            blockClassTokens.Add(x.narrow(1, 0, c));
            if (i == captureBlock) captured = x;
        }
        if (applyFinalNorm) x = norm.call(x);
        var output = new VitOutput(x.narrow(1, 0, c), x.narrow(1, c, x.shape[1] - c), h, w, attentions, attentionOutputs, blockClassTokens);
        captured?.MoveToOuterDisposeScope();
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>Blocks only, no final norm (MCTformer's forward). Tokens and per-block attention.</summary>
    public VitOutput ForwardBlocks(Tensor images) => Run(images, applyFinalNorm: false);

    /// <summary>Blocks then the final <c>norm</c> on every token (timm forward_features).</summary>
    public VitOutput ForwardFeatures(Tensor images) => Run(images, applyFinalNorm: true);

    /// <summary>
    /// <see cref="ForwardFeatures"/> plus every token [B, C+N, D] leaving block <paramref name="blockIndex"/> (0-based; negative
    /// counts from the end, −1 = last block), without the final norm (the "aux layer" of ToCo-style methods).
    /// </summary>
    public (VitOutput Output, Tensor BlockTokens) ForwardFeaturesWithBlock(Tensor images, int blockIndex)
    {
        int index = blockIndex < 0 ? Depth + blockIndex : blockIndex;
        if (index < 0 || index >= Depth) throw new WeakSegException($"block index {blockIndex} is outside the {Depth} blocks (use 0..{Depth - 1} or -{Depth}..-1)");
        var output = Run(images, applyFinalNorm: true, index, out var captured);
        return (output, captured!);
    }

    /// <summary>Same as <see cref="ForwardFeatures"/>.</summary>
    public override VitOutput forward(Tensor images) => ForwardFeatures(images);
}
