using WeakSeg.Models.Vit;

namespace WeakSeg.Methods;

/// <summary>
/// What every method configuration record offers to the generic code (recipe, registry, run folder): the class count, the
/// backbone it builds, a validity check and the two values the data decides (class count, training input size).
/// A record implements <see cref="IMethodConfig{TSelf}"/>, which adds its presets.
/// </summary>
public interface IMethodConfig
{
    /// <summary>Foreground classes K. It comes from the dataset only: presets leave it 0 (unbound), a recipe takes it from the
    /// dataset it trains on (<c>TrainRecipe.For</c>), a run's config.json records it; a configuration with 0 does not build.</summary>
    int NumClasses { get; }

    /// <summary>The ViT backbone actually built; null for a method on another backbone (a CNN), which then gives
    /// <see cref="ImageSize"/> and <see cref="MapStride"/> itself.</summary>
    VitConfig? BackboneConfig { get; }

    /// <summary>Training input side in pixels (the crop): a ViT's <see cref="VitConfig.ImageSize"/>.</summary>
    int ImageSize => VitBackbone(this).ImageSize;

    /// <summary>Pixels per cell of the grid the maps live on; inference rounds input sides to multiples of it: a ViT's patch size,
    /// a CNN's output stride.</summary>
    int MapStride => VitBackbone(this).PatchSize;

    /// <summary>What error messages call this configuration, e.g. "MCTformer".</summary>
    string Title { get; }

    /// <summary>Problems with this configuration, each naming the field; empty when valid.</summary>
    IReadOnlyList<string> Validate();

    /// <summary>This configuration with the class count of the dataset it trains on.</summary>
    IMethodConfig WithNumClasses(int numClasses);

    /// <summary>This configuration with another training input size (backbone position grid and crop).</summary>
    IMethodConfig WithImageSize(int imageSize);

    /// <summary>
    /// The background threshold of pseudo labels made from this method's maps when the user gives none: the value of the method's
    /// official code (cited in <see cref="PresetThreshold.Source"/>). It is a constant of the method, so taking it reads no pixel
    /// label of the user's data. Presets share it (a cpu preset has no value of its own to cite). Computed, so not part of the
    /// configuration's JSON. Without one, <see cref="PresetThreshold.Common"/>.
    /// </summary>
    PresetThreshold PseudoLabelThreshold => PresetThreshold.Common;

    /// <summary>The ViT backbone of a configuration that has one; a configuration without one must give <see cref="ImageSize"/> and
    /// <see cref="MapStride"/> itself.</summary>
    private static VitConfig VitBackbone(IMethodConfig config) => config.BackboneConfig
        ?? throw new InvalidOperationException($"{config.GetType().Name} has no ViT backbone and must implement ImageSize and MapStride");
}

/// <summary>A method's pseudo-label background threshold and where the value comes from.</summary>
/// <param name="Value">Background score: a pixel whose highest class map is at or below it is background.</param>
/// <param name="Source">Where the value comes from (repository, file, option), for reports.</param>
public sealed record PresetThreshold(double Value, string Source)
{
    /// <summary>For a method whose authors give no value: 0.5, the usual background threshold of normalised CAMs (ToCo's
    /// <c>--bkg_thre</c> default, rulixiang/ToCo scripts/dist_train_voc_seg_neg.py).</summary>
    public static PresetThreshold Common => new(0.5, "no value from the method's authors; the common CAM background threshold 0.5 (ToCo's --bkg_thre default)");
}

/// <summary>A method configuration record <typeparamref name="TSelf"/> with its named presets.</summary>
public interface IMethodConfig<TSelf> : IMethodConfig where TSelf : class, IMethodConfig<TSelf>
{
    /// <summary>The paper's setup (the record's defaults).</summary>
    static abstract TSelf Paper { get; }

    /// <summary>The setup sized for the built-in 96×96 benchmark on 2 CPU cores.</summary>
    static abstract TSelf Cpu { get; }

    /// <summary>The preset <paramref name="preset"/>, with no class count yet (the dataset gives it).</summary>
    static virtual TSelf Preset(MethodPreset preset) => preset == MethodPreset.Cpu ? TSelf.Cpu : TSelf.Paper;

    new TSelf WithNumClasses(int numClasses);

    new TSelf WithImageSize(int imageSize);

    IMethodConfig IMethodConfig.WithNumClasses(int numClasses) => WithNumClasses(numClasses);

    IMethodConfig IMethodConfig.WithImageSize(int imageSize) => WithImageSize(imageSize);
}

/// <summary>The checks every method configuration shares.</summary>
public static class MethodConfigChecks
{
    /// <summary>What an unbound class count (0) is called in errors: the dataset has not given it yet.</summary>
    public const string UnboundClassCount = "NumClasses is not set: the class count comes from the dataset the model trains on";

    /// <summary>NumClasses ≥ 1 (0: <see cref="UnboundClassCount"/>) and the backbone's own problems (<see cref="BackboneErrors"/>).</summary>
    public static List<string> CommonErrors(this IMethodConfig config)
    {
        var errors = ClassCountErrors(config.NumClasses).ToList();
        if (config.BackboneConfig is { } backbone) errors.AddRange(BackboneErrors(backbone, config.NumClasses));
        return errors;
    }

    /// <summary>The class count's problem: <see cref="UnboundClassCount"/> for 0, a negative count named; none for K ≥ 1.</summary>
    public static IEnumerable<string> ClassCountErrors(int numClasses)
    {
        if (numClasses == 0) yield return UnboundClassCount;
        else if (numClasses < 1) yield return $"NumClasses must be ≥ 1 (got {numClasses})";
    }

    /// <summary>The backbone's problems, prefixed "Backbone."; while the class count is unbound, not its class tokens (which follow it).</summary>
    public static IEnumerable<string> BackboneErrors(VitConfig backbone, int numClasses) => backbone.Validate()
        .Where(e => numClasses != 0 || !e.StartsWith(nameof(VitConfig.NumClassTokens), StringComparison.Ordinal))
        .Select(e => "Backbone." + e);

    /// <summary>The problems of <paramref name="config"/> other than an unbound class count: what a preset may already be checked for.</summary>
    public static IReadOnlyList<string> ErrorsBesidesClassCount(this IMethodConfig config) =>
        config.Validate().Where(e => e != UnboundClassCount).ToList();

    /// <summary>Throws a <see cref="WeakSegException"/> listing every problem besides an unbound class count: the check of what a preset
    /// computes before a dataset gives K (its trainer schedule).</summary>
    public static void EnsureValidBesidesClassCount(this IMethodConfig config)
    {
        var errors = config.ErrorsBesidesClassCount();
        if (errors.Count > 0) throw new WeakSegException($"invalid {config.Title} configuration: " + string.Join("; ", errors));
    }

    /// <summary>Throws a <see cref="WeakSegException"/> listing every problem of <see cref="IMethodConfig.Validate"/>.</summary>
    public static void EnsureValid(this IMethodConfig config)
    {
        var errors = config.Validate();
        if (errors.Count > 0) throw new WeakSegException($"invalid {config.Title} configuration: " + string.Join("; ", errors));
    }
}
