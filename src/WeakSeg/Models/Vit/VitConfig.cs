namespace WeakSeg.Models.Vit;

/// <summary>
/// Shape and regularisation of a class-token vision transformer (timm/DeiT layout). Defaults are DeiT-S as used by
/// MCTformer (the official MCTformer code, xulianuwa/MCTformer: patch 16, dim 384, depth 12, heads 6, MLP ratio 4, qkv bias, LayerNorm eps 1e-6).
/// </summary>
public sealed record VitConfig
{
    /// <summary>Training input side in pixels; sets the position-embedding grid (DeiT: 224).</summary>
    public int ImageSize { get; init; } = 224;

    /// <summary>Patch side in pixels (DeiT: 16).</summary>
    public int PatchSize { get; init; } = 16;

    public int InChannels { get; init; } = 3;

    /// <summary>Token width D (DeiT-S: 384).</summary>
    public int EmbedDim { get; init; } = 384;

    /// <summary>Number of transformer blocks (DeiT-S: 12).</summary>
    public int Depth { get; init; } = 12;

    /// <summary>Attention heads (DeiT-S: 6).</summary>
    public int NumHeads { get; init; } = 6;

    /// <summary>MLP hidden width / D (DeiT: 4).</summary>
    public double MlpRatio { get; init; } = 4.0;

    /// <summary>Bias in the fused qkv projection (DeiT: true).</summary>
    public bool QkvBias { get; init; } = true;

    /// <summary>LayerNorm epsilon (DeiT/timm ViT: 1e-6).</summary>
    public double LayerNormEps { get; init; } = 1e-6;

    /// <summary>Number of class tokens C: 1 for a plain ViT, the number of classes for MCTformer.</summary>
    public int NumClassTokens { get; init; } = 1;

    /// <summary>Dropout after adding position embeddings, after attention projection and in the MLP (DeiT: 0).</summary>
    public double DropRate { get; init; } = 0.0;

    /// <summary>Dropout on attention weights (DeiT: 0).</summary>
    public double AttnDropRate { get; init; } = 0.0;

    /// <summary>Stochastic-depth rate of the last block, linearly increasing from 0 (DeiT training recipe: 0.1).</summary>
    public double DropPathRate { get; init; } = 0.1;

    /// <summary>
    /// Separate position embeddings for the class tokens (<c>pos_embed_cls</c> [1, C, D]) and the patches (<c>pos_embed_pat</c>
    /// [1, N, D]) instead of one <c>pos_embed</c> [1, C+N, D] (MCTformer+). The sums are the same; the parameters (and keys) differ.
    /// </summary>
    public bool SeparatePositionEmbeddings { get; init; }

    /// <summary>How position embeddings follow other input sizes (MCTformer/DINO: scale-factor rule).</summary>
    public PositionEmbeddingResize PositionEmbeddingResize { get; init; } = PositionEmbeddingResize.DinoScaleFactor;

    /// <summary>How images become tokens: <c>patch</c> (ViT/DeiT) or a hybrid ImageNet ResNet-18 trunk (<c>resnet18-s8</c>,
    /// <c>resnet18-s16</c>; <see cref="PatchSize"/> must equal its stride). Every class-token method runs on either.</summary>
    public VitStem Stem { get; init; } = VitStem.Patch;

    /// <summary>Hybrid stems: start the CNN from the packaged ImageNet weights (true) or from random weights (false).</summary>
    public bool PretrainedStem { get; init; } = true;

    /// <summary>Hybrid stems: ONNX file of the CNN weights; null = the packaged ResNet-18.</summary>
    public string? StemOnnx { get; init; }

    /// <summary>Hybrid stems: keep the CNN fixed (no gradients; bit-identical through training). BatchNorm statistics stay the
    /// pretrained ones in either case.</summary>
    public bool FreezeStem { get; init; } = true;

    /// <summary>Hybrid stems that are not frozen: multiplier of the scheduled learning rate for the CNN's parameters.</summary>
    public double StemLearningRateScale { get; init; } = 0.1;

    /// <summary>Patches per side at <see cref="ImageSize"/>.</summary>
    public int GridSize => ImageSize / PatchSize;

    /// <summary>ViT-Ti / DeiT-Ti: 192 wide, 12 deep, 3 heads.</summary>
    public static VitConfig Tiny => new() { EmbedDim = 192, Depth = 12, NumHeads = 3 };

    /// <summary>ViT-S / DeiT-S: 384 wide, 12 deep, 6 heads.</summary>
    public static VitConfig Small => new() { EmbedDim = 384, Depth = 12, NumHeads = 6 };

    /// <summary>ViT-B / DeiT-B: 768 wide, 12 deep, 12 heads.</summary>
    public static VitConfig Base => new() { EmbedDim = 768, Depth = 12, NumHeads = 12 };

    /// <summary>
    /// <c>vit-cpu-128x4</c>: the CAM methods' cpu preset. Patch 8 on 96×96 (12×12 patches), 128 wide, 4 blocks, 4 heads, no stochastic
    /// depth. Chosen by measuring: a batch of 32 costs ≈ 2 CPU-seconds (≈ 1 s on 2 idle cores) versus ≈ 3.5 for 192 wide × 6 deep.
    /// </summary>
    public static VitConfig Cpu128x4 => new() { ImageSize = 96, PatchSize = 8, EmbedDim = 128, Depth = 4, NumHeads = 4, DropPathRate = 0.0 };

    /// <summary><see cref="Cpu128x4"/> whose tokens come from the packaged ImageNet ResNet-18 up to stride 8 (frozen, 1×1 projection):
    /// the cpu preset of the class-token methods whose maps are better on it than on the patch stem (measured on the built-in benchmark;
    /// README "From scratch vs the pretrained stem").</summary>
    public static VitConfig Cpu128x4OnResNet18 => Cpu128x4 with { Stem = VitStem.ResNet18Stride8 };

    /// <summary><c>vit-cpu-192x4</c>: the retraining segmenter's cpu preset. Patch 8, 192 wide, 4 blocks, 3 heads (the segmenter sets
    /// the input side to its crop and keeps the default stochastic depth field, overridden by its own encoder drop path).</summary>
    public static VitConfig Cpu192x4 => new() { PatchSize = 8, EmbedDim = 192, Depth = 4, NumHeads = 3 };

    /// <summary><c>vit-cpu-192x6</c>: the model of <c>weakseg bench train --model cpu</c>. Patch 8 on 96×96, 192 wide, 6 blocks, 4 heads.</summary>
    public static VitConfig Cpu192x6 => new() { ImageSize = 96, PatchSize = 8, EmbedDim = 192, Depth = 6, NumHeads = 4 };

    /// <summary>The named backbone presets, each with what uses it: one name per shape (the three small CPU ViTs are different
    /// networks, so they are not all called "cpu").</summary>
    public static IReadOnlyList<(string Name, Func<VitConfig> Config, string UsedBy)> Presets { get; } =
    [
        ("tiny", () => Tiny, "ViT-Ti / DeiT-Ti"),
        ("small", () => Small, "ViT-S / DeiT-S, the papers' backbone"),
        ("base", () => Base, "ViT-B / DeiT-B"),
        ("vit-cpu-128x4", () => Cpu128x4, "the CAM methods' cpu preset"),
        ("vit-cpu-192x4", () => Cpu192x4, "the segmenter's cpu preset"),
        ("vit-cpu-192x6", () => Cpu192x6, "bench train --model cpu"),
    ];

    /// <summary>The names of <see cref="Presets"/>.</summary>
    public static IReadOnlyList<string> PresetNames => Presets.Select(p => p.Name).ToList();

    /// <summary>Preset by name: one of <see cref="PresetNames"/> (tiny, small and base also as deit-tiny/deit-small/deit-base, vit-*, ti/s/b).</summary>
    public static VitConfig FromPreset(string name)
    {
        var key = name.Trim().ToLowerInvariant();
        foreach (var preset in Presets)
            if (preset.Name == key) return preset.Config();
        foreach (var prefix in new[] { "deit-", "deit_", "vit-", "vit_" })
            if (key.StartsWith(prefix, StringComparison.Ordinal)) key = key[prefix.Length..];
        return key switch
        {
            "tiny" or "ti" or "t" => Tiny,
            "small" or "s" => Small,
            "base" or "b" => Base,
            _ => throw new WeakSegException($"unknown ViT preset '{name}' (expected {string.Join(", ", PresetNames)})"),
        };
    }

    /// <summary>Problems with this configuration, each naming the field; empty when valid.</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (PatchSize < 1) errors.Add($"PatchSize must be ≥ 1 (got {PatchSize})");
        if (ImageSize < PatchSize) errors.Add($"ImageSize must be ≥ PatchSize (got {ImageSize} < {PatchSize})");
        else if (PatchSize >= 1 && ImageSize % PatchSize != 0) errors.Add($"ImageSize must be a multiple of PatchSize (got {ImageSize}, {PatchSize})");
        if (InChannels < 1) errors.Add($"InChannels must be ≥ 1 (got {InChannels})");
        if (EmbedDim < 1) errors.Add($"EmbedDim must be ≥ 1 (got {EmbedDim})");
        if (Depth < 1) errors.Add($"Depth must be ≥ 1 (got {Depth})");
        if (NumHeads < 1) errors.Add($"NumHeads must be ≥ 1 (got {NumHeads})");
        else if (EmbedDim % NumHeads != 0) errors.Add($"EmbedDim ({EmbedDim}) must be divisible by NumHeads ({NumHeads})");
        if (MlpRatio <= 0) errors.Add($"MlpRatio must be > 0 (got {MlpRatio})");
        if (LayerNormEps <= 0) errors.Add($"LayerNormEps must be > 0 (got {LayerNormEps})");
        if (VitStems.Stride(Stem) is { } stride)
        {
            if (PatchSize != stride) errors.Add($"PatchSize must be {stride} for stem {VitStems.Name(Stem)} (its stride; got {PatchSize})");
            if (InChannels != 3) errors.Add($"InChannels must be 3 for stem {VitStems.Name(Stem)} (got {InChannels})");
            if (!(StemLearningRateScale >= 0) || double.IsInfinity(StemLearningRateScale)) errors.Add($"StemLearningRateScale must be a finite number ≥ 0 (got {StemLearningRateScale})");
        }
        if (NumClassTokens < 1) errors.Add($"NumClassTokens must be ≥ 1 (got {NumClassTokens})");
        foreach (var (field, p) in new[] { ("DropRate", DropRate), ("AttnDropRate", AttnDropRate), ("DropPathRate", DropPathRate) })
            if (p < 0 || p >= 1) errors.Add($"{field} must be in [0, 1) (got {p})");
        return errors;
    }

    /// <summary>Throws a <see cref="WeakSegException"/> listing every problem.</summary>
    public void EnsureValid()
    {
        var errors = Validate();
        if (errors.Count > 0) throw new WeakSegException("invalid ViT configuration: " + string.Join("; ", errors));
    }
}
