using System.Text.Json;
using System.Text.Json.Nodes;
using WeakSeg.IO;
using WeakSeg.Models.Vit;

namespace WeakSeg.Methods;

/// <summary>Named starting points for a method's configuration.</summary>
public enum MethodPreset
{
    /// <summary>The paper's setup: DeiT-S, patch 16, 224 input (the config records' defaults).</summary>
    Paper,

    /// <summary>A small ViT sized for the built-in 96×96 synthetic benchmark on 2 CPU cores (<see cref="VitConfig.Cpu128x4"/>, named vit-cpu-128x4).</summary>
    Cpu,
}

/// <summary>A method's maps as data: the kinds it produces and the one each preset uses by default.</summary>
/// <param name="Supported">Kinds the method's <see cref="IWsssMethod.PatchGridMaps"/> accepts.</param>
/// <param name="PaperDefault">Default of the paper preset (the paper's final map).</param>
/// <param name="CpuDefault">Default of the cpu preset (the best map of the method's cpu network on the built-in benchmark).</param>
public sealed record MethodMaps(IReadOnlyList<LocalizationMapKind> Supported, LocalizationMapKind PaperDefault, LocalizationMapKind CpuDefault)
{
    public LocalizationMapKind DefaultFor(MethodPreset preset) => preset == MethodPreset.Cpu ? CpuDefault : PaperDefault;

    /// <exception cref="WeakSegException">the method has no <paramref name="kind"/> map</exception>
    public void Require(LocalizationMapKind kind, string method)
    {
        if (!Supported.Contains(kind))
            throw new WeakSegException($"method '{method}' has no {LocalizationMapKindNames.Name(kind)} map (it has: {string.Join(", ", Supported.Select(LocalizationMapKindNames.Name))})");
    }
}

/// <summary>
/// One registered method: its name, what it offers (<see cref="Maps"/>), its configuration presets and JSON, and how to build it
/// (the analogue of timm's register_model). Configurations travel as <see cref="IMethodConfig"/>; each factory checks the type.
/// </summary>
public interface IWsssMethodFactory
{
    string Name { get; }
    string Description { get; }
    Type ConfigType { get; }
    MethodMaps Maps { get; }

    /// <summary>The trained network has its own segmentation decoder (<see cref="ISegmentationDecoderMethod"/>): the pipeline predicts the
    /// val split with it instead of retraining a segmenter on the pseudo labels.</summary>
    bool HasSegmentationDecoder => false;

    /// <summary>The method makes its own labels for further training rounds (<see cref="ILabelRoundsMethod"/>): the pipeline's
    /// <c>--rounds N</c> asks it for each next round's labels.</summary>
    bool HasLabelRounds => false;

    /// <summary>The method takes saliency maps (<see cref="Training.TrainBatch.Saliency"/>): <c>--saliency DIR</c> gives them.</summary>
    bool UsesSaliency => false;

    /// <summary>The method config of a preset, with no class count yet (0: the dataset gives it; it does not build until then).</summary>
    IMethodConfig DefaultConfig(MethodPreset preset);

    /// <summary>Problems with a config, each naming the field.</summary>
    IReadOnlyList<string> Validate(IMethodConfig config);

    JsonNode ConfigToJson(IMethodConfig config);

    /// <summary>Parses a config (snake_case keys, enums as strings); unknown fields are errors naming the field and <paramref name="source"/>.</summary>
    IMethodConfig ConfigFromJson(JsonNode node, string source);

    IWsssMethod Create(IMethodConfig config);
}

/// <summary>
/// The registration of a method whose configuration is the record <typeparamref name="TConfig"/>. A record type may serve several
/// registered names (MCTformer V1 and V2): <paramref name="variant"/> turns a preset into this name's variant, and a configuration
/// that <paramref name="variant"/> would change is refused, naming the field.
/// </summary>
public sealed class MethodRegistration<TConfig>(string name, string description, MethodMaps maps, Func<TConfig, IWsssMethod> create,
    Func<TConfig, TConfig>? variant = null, bool segmentationDecoder = false, bool labelRounds = false, bool usesSaliency = false)
    : IWsssMethodFactory where TConfig : class, IMethodConfig<TConfig>
{
    public string Name => name;
    public string Description => description;
    public Type ConfigType => typeof(TConfig);
    public MethodMaps Maps => maps;
    public bool HasSegmentationDecoder => segmentationDecoder;
    public bool HasLabelRounds => labelRounds;
    public bool UsesSaliency => usesSaliency;

    TConfig Typed(IMethodConfig config) => config as TConfig
        ?? throw new WeakSegException($"method '{name}' needs a {typeof(TConfig).Name}, got {config?.GetType().Name ?? "null"}");

    public IMethodConfig DefaultConfig(MethodPreset preset)
    {
        var config = TConfig.Preset(preset);
        return variant is null ? config : variant(config);
    }

    public IReadOnlyList<string> Validate(IMethodConfig config)
    {
        var typed = Typed(config);
        var errors = typed.Validate().ToList();
        if (variant?.Invoke(typed) is { } expected)
            foreach (var p in typeof(TConfig).GetProperties().Where(p => p.CanWrite))
                if (!Equals(p.GetValue(typed), p.GetValue(expected)))
                    errors.Add($"{p.Name} must be {p.GetValue(expected)} for method {name} (got {p.GetValue(typed)})");
        return errors;
    }

    public JsonNode ConfigToJson(IMethodConfig config) => JsonSerializer.SerializeToNode(Typed(config), WeakSegJson.Options)!;

    public IMethodConfig ConfigFromJson(JsonNode node, string source)
    {
        // The serializer skips keys that name computed (get-only) properties without a word; a value there would be silently ignored.
        if (node is JsonObject fields)
            foreach (var (key, _) in fields)
                if (ComputedKeys.Contains(key))
                    throw WeakSegException.ForFile(source, $"'{key}' of the '{name}' model configuration is computed from its other fields, not a setting" +
                        (key == PseudoLabelThresholdKey ? " (give the pseudo-label threshold with --threshold)" : ""));
        try
        {
            return node.Deserialize<TConfig>(WeakSegJson.Options) ?? throw WeakSegException.ForFile(source, $"empty '{name}' model configuration");
        }
        catch (JsonException e)
        {
            throw WeakSegException.ForFile(source, $"bad '{name}' model configuration: {e.Message}");
        }
    }

    static readonly string PseudoLabelThresholdKey = WeakSegJson.Key(nameof(IMethodConfig.PseudoLabelThreshold));

    /// <summary>JSON names of <typeparamref name="TConfig"/>'s computed properties (those without a setter).</summary>
    static readonly HashSet<string> ComputedKeys = typeof(TConfig).GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance)
        .Where(p => p.CanRead && !p.CanWrite).Select(p => WeakSegJson.Key(p.Name)).ToHashSet(StringComparer.Ordinal);

    public IWsssMethod Create(IMethodConfig config)
    {
        var typed = Typed(config);
        var errors = Validate(typed);
        if (errors.Count > 0) throw new WeakSegException($"invalid {name} configuration: " + string.Join("; ", errors));
        var method = create(typed);
        if (segmentationDecoder && method is not ISegmentationDecoderMethod)
        {
            method.Dispose();
            throw new InvalidOperationException($"method '{name}' is registered with a segmentation decoder but {method.GetType().Name} does not implement {nameof(ISegmentationDecoderMethod)}");
        }
        if (labelRounds && method is not ILabelRoundsMethod)
        {
            method.Dispose();
            throw new InvalidOperationException($"method '{name}' is registered with label-updating rounds but {method.GetType().Name} does not implement {nameof(ILabelRoundsMethod)}");
        }
        return method;
    }
}

/// <summary>
/// Method name → registration. The built-in methods are listed in <see cref="BuiltInMethods"/>, one line each; a method added at run
/// time (a plug-in, a test) calls <see cref="Register{TConfig}"/> the same way.
/// </summary>
public static class MethodRegistry
{
    static readonly object Gate = new();
    static readonly Dictionary<string, IWsssMethodFactory> Factories = new(StringComparer.OrdinalIgnoreCase);

    static MethodRegistry() => BuiltInMethods.RegisterAll();

    /// <summary>Class-to-patch layers summed by the cpu preset (the last 2 of its 4 blocks).</summary>
    public const int CpuCamLayers = 2;

    /// <summary>
    /// Registers (or replaces) method <paramref name="name"/>: its configuration record <typeparamref name="TConfig"/> (presets, JSON),
    /// its maps as data and its constructor. One line per method, e.g.
    /// <c>Register&lt;MctFormerConfig&gt;("mctformer-v2", "…", maps, c => new MctFormerMethod(c), c => c with { Variant = V2 })</c>.
    /// </summary>
    /// <param name="segmentationDecoder">the method's network has its own segmentation decoder (its class implements
    /// <see cref="ISegmentationDecoderMethod"/>); the pipeline then predicts the val split with it</param>
    /// <param name="labelRounds">the method makes the labels of further training rounds (its class implements <see cref="ILabelRoundsMethod"/>)</param>
    /// <param name="usesSaliency">the method takes saliency maps (<see cref="Training.TrainBatch.Saliency"/>)</param>
    public static void Register<TConfig>(string name, string description, MethodMaps maps, Func<TConfig, IWsssMethod> create,
        Func<TConfig, TConfig>? variant = null, bool segmentationDecoder = false, bool labelRounds = false, bool usesSaliency = false)
        where TConfig : class, IMethodConfig<TConfig>
    {
        foreach (var kind in new[] { maps.PaperDefault, maps.CpuDefault })
            if (!maps.Supported.Contains(kind)) throw new ArgumentException($"method '{name}': default map {kind} is not among its maps", nameof(maps));
        Register(new MethodRegistration<TConfig>(name, description, maps, create, variant, segmentationDecoder, labelRounds, usesSaliency));
    }

    /// <summary>Adds (or replaces) a method under its <see cref="IWsssMethodFactory.Name"/>.</summary>
    public static void Register(IWsssMethodFactory factory)
    {
        lock (Gate) Factories[factory.Name] = factory;
    }

    /// <summary>Registered names, sorted.</summary>
    public static IReadOnlyList<string> Names
    {
        get { lock (Gate) return Factories.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList(); }
    }

    /// <summary>The factory of <paramref name="name"/>; an unknown name is an error listing the known ones.</summary>
    public static IWsssMethodFactory Get(string name)
    {
        lock (Gate)
            if (Factories.TryGetValue(name.Trim(), out var f)) return f;
        throw new WeakSegException($"unknown method '{name}' (known: {string.Join(", ", Names)})");
    }

    /// <summary>Builds a method from its preset config for an explicit class count <paramref name="numClasses"/> (tests and benchmarks on
    /// random tensors; training takes K from its dataset through <c>TrainRecipe.For</c>).</summary>
    public static IWsssMethod Create(string name, MethodPreset preset, int numClasses)
    {
        var f = Get(name);
        return f.Create(f.DefaultConfig(preset).WithNumClasses(numClasses));
    }
}
