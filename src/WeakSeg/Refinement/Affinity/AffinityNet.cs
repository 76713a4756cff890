using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Models.Vit;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace WeakSeg.Refinement.Affinity;

/// <summary>Shape of the affinity network. Head sizes follow PSA's resnet38_aff.py (three levels projected to 64/128/256
/// channels, fused by a 448→448 1×1 convolution, ELU after each); the levels here are the last ViT blocks.</summary>
public sealed record AffinityNetConfig
{
    /// <summary>Backbone shape. Set <see cref="VitConfig.NumClassTokens"/> to the source run's class tokens (MCTformer: classes)
    /// so its <c>cls_token</c>/<c>pos_embed</c> load.</summary>
    public VitConfig Backbone { get; init; } = VitConfig.Small;

    /// <summary>Channels each of the last blocks is projected to (PSA f8_3/f8_4/f8_5: 64, 128, 256); one entry per block used.</summary>
    public int[] ProjectionChannels { get; init; } = [64, 128, 256];

    /// <summary>Channels of the fused feature (PSA f9: 448).</summary>
    public int FusedChannels { get; init; } = 448;

    /// <summary>Bilinear upsampling of the patch grid before fusion: 2 gives stride 8 at patch 16, PSA's feature stride.</summary>
    public int Upsample { get; init; } = 2;

    /// <summary>Pixels per feature cell.</summary>
    public int Stride => Backbone.PatchSize / Upsample;

    public void Validate()
    {
        Backbone.EnsureValid();
        if (ProjectionChannels.Length < 1 || ProjectionChannels.Length > Backbone.Depth)
            throw new WeakSegException($"affinity head: ProjectionChannels needs 1..{Backbone.Depth} entries (one per last block), got {ProjectionChannels.Length}");
        if (ProjectionChannels.Any(c => c < 1) || FusedChannels < 1) throw new WeakSegException("affinity head: channel counts must be ≥ 1");
        if (Upsample < 1 || Backbone.PatchSize % Upsample != 0)
            throw new WeakSegException($"affinity head: Upsample must divide the patch size {Backbone.PatchSize} (got {Upsample})");
    }
}

/// <summary>
/// AffinityNet on a ViT: the patch tokens of the last L blocks, each LayerNorm-ed and projected by a 1×1 convolution + ELU,
/// concatenated, bilinearly upsampled, fused by a 1×1 convolution + ELU into a feature map f [B, F, h', w'] (h' = H / stride).
/// Affinity of two cells: a_ij = exp(−mean_c |f_i,c − f_j,c|) (PSA resnet38_aff.py: the L1 distance averaged over channels).
/// Keys: <c>backbone.*</c> (timm names), <c>norms.*</c>, <c>proj.*</c>, <c>fuse.*</c>.
/// </summary>
public sealed class AffinityNet : Module<Tensor, Tensor>
{
    readonly VisionTransformer backbone;
    readonly ModuleList<LayerNorm> norms;
    readonly ModuleList<Conv2d> proj;
    readonly Conv2d fuse;
    readonly Block[] _blocks;

    public AffinityNet(AffinityNetConfig config) : base(nameof(AffinityNet))
    {
        config.Validate();
        Config = config;
        backbone = new VisionTransformer(config.Backbone);
        norms = new ModuleList<LayerNorm>();
        proj = new ModuleList<Conv2d>();
        foreach (var channels in config.ProjectionChannels)
        {
            norms.Add(LayerNorm(config.Backbone.EmbedDim, eps: config.Backbone.LayerNormEps));
            proj.Add(Conv2d(config.Backbone.EmbedDim, channels, 1, bias: false));
        }
        fuse = Conv2d(config.ProjectionChannels.Sum(), config.FusedChannels, 1, bias: false);
        _blocks = backbone.named_children().First(c => c.name == "blocks").module is ModuleList<Block> list
            ? list.ToArray() : throw new InvalidOperationException("VisionTransformer has no 'blocks' list");
        RegisterComponents();
        using var _ = torch.no_grad();
        foreach (var p in proj) init.kaiming_normal_(p.weight);              // PSA: kaiming_normal_ for f8_*
        init.xavier_uniform_(fuse.weight, gain: 4);                           // PSA: xavier_uniform_(gain = 4) for f9
    }

    public AffinityNetConfig Config { get; }

    /// <summary>The ViT backbone (load source weights into it).</summary>
    public VisionTransformer Backbone => backbone;

    /// <summary>Feature map [B, F, h·Upsample, w·Upsample] for images [B, 3, H, W] (H, W multiples of the patch size).</summary>
    public override Tensor forward(Tensor images)
    {
        using var scope = torch.NewDisposeScope();
        var (h, w) = backbone.GridFor(images.shape[2], images.shape[3]);
        int c = backbone.NumClassTokens, levels = proj.Count, first = _blocks.Length - levels;
        var x = backbone.EmbedTokens(images);                                          // [B, C+N, D]
        var projected = new List<Tensor>(levels);
        for (int i = 0; i < _blocks.Length; i++)
        {
            x = _blocks[i].call(x).Output;
            if (i < first) continue;
            var tokens = norms[i - first].call(x.narrow(1, c, (long)h * w));            // [B, N, D]
            var grid = tokens.transpose(1, 2).reshape(tokens.shape[0], tokens.shape[2], h, w);   // [B, D, h, w]
            projected.Add(functional.elu(proj[i - first].call(grid), 1.0));
        }
        var features = torch.cat(projected, 1);                                          // [B, ΣP, h, w]
        if (Config.Upsample > 1)
            features = functional.interpolate(features, size: new long[] { (long)h * Config.Upsample, (long)w * Config.Upsample },
                                              mode: InterpolationMode.Bilinear, align_corners: false);
        return functional.elu(fuse.call(features), 1.0).MoveToOuterDisposeScope();          // [B, F, h', w']
    }

    /// <summary>a = exp(−mean_c |f_from − f_to|) for features [B, F, h, w] and flat pair indices [P] → [B, P].</summary>
    public static Tensor PairAffinities(Tensor features, Tensor from, Tensor to)
    {
        using var scope = torch.NewDisposeScope();
        var flat = features.flatten(2);                                                 // [B, F, N]
        var a = flat.index_select(2, from);
        var b = flat.index_select(2, to);
        return (a - b).abs().mean(new long[] { 1 }).neg().exp().MoveToOuterDisposeScope();
    }
}
