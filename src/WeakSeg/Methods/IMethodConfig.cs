using WeakSeg.Models.Vit;

namespace WeakSeg.Methods;

/// <summary>
/// What every method configuration record offers to the generic code (recipe, registry, run folder): the class count, the
/// backbone it builds, a validity check and the two values the data decides (class count, training input size).
/// A record implements <see cref="IMethodConfig{TSelf}"/>, which adds its presets.
/// </summary>
public interface IMethodConfig
{
    /// <summary>Foreground classes K.</summary>
    int NumClasses { get; }

    /// <summary>The backbone configuration actually built.</summary>
    VitConfig BackboneConfig { get; }

    /// <summary>What error messages call this configuration, e.g. "MCTformer".</summary>
    string Title { get; }

    /// <summary>Problems with this configuration, each naming the field; empty when valid.</summary>
    IReadOnlyList<string> Validate();

    /// <summary>This configuration with another class count (the dataset decides it).</summary>
    IMethodConfig WithNumClasses(int numClasses);

    /// <summary>This configuration with another training input size (backbone position grid and crop).</summary>
    IMethodConfig WithImageSize(int imageSize);
}

/// <summary>A method configuration record <typeparamref name="TSelf"/> with its named presets.</summary>
public interface IMethodConfig<TSelf> : IMethodConfig where TSelf : class, IMethodConfig<TSelf>
{
    /// <summary>The paper's setup (the record's defaults).</summary>
    static abstract TSelf Paper { get; }

    /// <summary>The setup sized for the built-in 96×96 benchmark on 2 CPU cores.</summary>
    static abstract TSelf Cpu { get; }

    /// <summary>The preset <paramref name="preset"/> for <paramref name="numClasses"/> foreground classes.</summary>
    static virtual TSelf Preset(MethodPreset preset, int numClasses) =>
        (preset == MethodPreset.Cpu ? TSelf.Cpu : TSelf.Paper).WithNumClasses(numClasses);

    new TSelf WithNumClasses(int numClasses);

    new TSelf WithImageSize(int imageSize);

    IMethodConfig IMethodConfig.WithNumClasses(int numClasses) => WithNumClasses(numClasses);

    IMethodConfig IMethodConfig.WithImageSize(int imageSize) => WithImageSize(imageSize);
}

/// <summary>The checks every method configuration shares.</summary>
public static class MethodConfigChecks
{
    /// <summary>NumClasses ≥ 1 and the backbone's own problems (prefixed "Backbone.").</summary>
    public static List<string> CommonErrors(this IMethodConfig config)
    {
        var errors = new List<string>();
        if (config.NumClasses < 1) errors.Add($"NumClasses must be ≥ 1 (got {config.NumClasses})");
        errors.AddRange(config.BackboneConfig.Validate().Select(e => "Backbone." + e));
        return errors;
    }

    /// <summary>Throws a <see cref="WeakSegException"/> listing every problem of <see cref="IMethodConfig.Validate"/>.</summary>
    public static void EnsureValid(this IMethodConfig config)
    {
        var errors = config.Validate();
        if (errors.Count > 0) throw new WeakSegException($"invalid {config.Title} configuration: " + string.Join("; ", errors));
    }
}
