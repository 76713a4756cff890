using WeakSeg.Models.Vit;

namespace WeakSeg.Methods.MctFormer;

/// <summary>MCTformer-V1 uses only class-token attention; V2 adds a PatchCAM head on the patch tokens.</summary>
public enum MctFormerVariant
{
    V1,
    V2,
}

/// <summary>MCTformer model and map settings. Defaults: the paper's VOC setup (shared/specs README "Verified facts").</summary>
public sealed record MctFormerConfig : IMethodConfig
{
    /// <summary>V2 (PatchCAM head, fused maps) is the paper's best model.</summary>
    public MctFormerVariant Variant { get; init; } = MctFormerVariant.V2;

    /// <summary>Foreground classes = class tokens (PASCAL VOC: 20).</summary>
    public int NumClasses { get; init; } = 20;

    /// <summary>Backbone shape: DeiT-S, patch 16, 224 input (spec). <see cref="VitConfig.NumClassTokens"/> is overridden by <see cref="NumClasses"/>.</summary>
    public VitConfig Backbone { get; init; } = VitConfig.Small;

    /// <summary>
    /// Number of last blocks whose class-to-patch attention is summed into the maps. The MCTformer-V2 reference code uses 3
    /// (per the brief; not verified against the paper text); the golden fixture uses 2. Exposed as an option.
    /// </summary>
    public int CamLayers { get; init; } = 3;

    /// <summary>The backbone configuration actually built (C = NumClasses class tokens).</summary>
    public VitConfig BackboneConfig => Backbone with { NumClassTokens = NumClasses };

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (NumClasses < 1) errors.Add($"NumClasses must be ≥ 1 (got {NumClasses})");
        errors.AddRange(BackboneConfig.Validate().Select(e => "Backbone." + e));
        if (CamLayers < 1 || CamLayers > Backbone.Depth) errors.Add($"CamLayers must be in [1, Backbone.Depth = {Backbone.Depth}] (got {CamLayers})");
        return errors;
    }

    public void EnsureValid()
    {
        var errors = Validate();
        if (errors.Count > 0) throw new WeakSegException("invalid MCTformer configuration: " + string.Join("; ", errors));
    }
}
