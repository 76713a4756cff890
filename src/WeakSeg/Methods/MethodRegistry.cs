using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using WeakSeg.Methods.Baselines;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Models.Vit;

namespace WeakSeg.Methods;

/// <summary>Named starting points for a method's configuration.</summary>
public enum MethodPreset
{
    /// <summary>The paper's setup: DeiT-S, patch 16, 224 input (the config records' defaults).</summary>
    Paper,

    /// <summary>A small ViT sized for the built-in 96×96 synthetic benchmark on 2 CPU cores (see <see cref="MethodRegistry.CpuBackbone"/>).</summary>
    Cpu,
}

/// <summary>
/// Builds one method from its config record. Registered in <see cref="MethodRegistry"/> under <see cref="Name"/>
/// (the analogue of timm's register_model). Configs are passed as <c>object</c> so the registry stays open to new methods;
/// each factory checks the type.
/// </summary>
public interface IWsssMethodFactory
{
    string Name { get; }
    string Description { get; }
    Type ConfigType { get; }

    /// <summary>The method config of a preset, for <paramref name="numClasses"/> foreground classes.</summary>
    object DefaultConfig(MethodPreset preset, int numClasses);

    /// <summary>The config with another class count (the dataset decides it).</summary>
    object WithNumClasses(object config, int numClasses);

    /// <summary>The config with another training input size (backbone position grid).</summary>
    object WithImageSize(object config, int imageSize);

    /// <summary>Backbone shape of a config.</summary>
    VitConfig BackboneOf(object config);

    /// <summary>Problems with a config, each naming the field.</summary>
    IReadOnlyList<string> Validate(object config);

    JsonNode ConfigToJson(object config);

    /// <summary>Parses a config (snake_case keys, enums as strings); unknown fields are errors naming the field and <paramref name="source"/>.</summary>
    object ConfigFromJson(JsonNode node, string source);

    IWsssMethod Create(object config);
}

/// <summary>A factory for a method whose configuration is the record <typeparamref name="TConfig"/>.</summary>
public sealed class WsssMethodFactory<TConfig>(
    string name,
    string description,
    JsonTypeInfo<TConfig> jsonType,
    Func<MethodPreset, int, TConfig> preset,
    Func<TConfig, int, TConfig> withNumClasses,
    Func<TConfig, int, TConfig> withImageSize,
    Func<TConfig, VitConfig> backbone,
    Func<TConfig, IReadOnlyList<string>> validate,
    Func<TConfig, IWsssMethod> create) : IWsssMethodFactory where TConfig : class
{
    public string Name => name;
    public string Description => description;
    public Type ConfigType => typeof(TConfig);

    TConfig Typed(object config) => config as TConfig
        ?? throw new WeakSegException($"method '{name}' needs a {typeof(TConfig).Name}, got {config?.GetType().Name ?? "null"}");

    public object DefaultConfig(MethodPreset p, int numClasses) => preset(p, numClasses);
    public object WithNumClasses(object config, int numClasses) => withNumClasses(Typed(config), numClasses);
    public object WithImageSize(object config, int imageSize) => withImageSize(Typed(config), imageSize);
    public VitConfig BackboneOf(object config) => backbone(Typed(config));
    public IReadOnlyList<string> Validate(object config) => validate(Typed(config));
    public JsonNode ConfigToJson(object config) => JsonSerializer.SerializeToNode(Typed(config), jsonType)!;

    public object ConfigFromJson(JsonNode node, string source)
    {
        try
        {
            return node.Deserialize(jsonType) ?? throw WeakSegException.ForFile(source, $"empty '{name}' model configuration");
        }
        catch (JsonException e)
        {
            throw WeakSegException.ForFile(source, $"bad '{name}' model configuration: {e.Message}");
        }
    }

    public IWsssMethod Create(object config)
    {
        var typed = Typed(config);
        var errors = validate(typed);
        if (errors.Count > 0) throw new WeakSegException($"invalid {name} configuration: " + string.Join("; ", errors));
        return create(typed);
    }
}

/// <summary>Method name → factory. Built-in: mctformer-v1, mctformer-v2, vit-cls, cam. Later methods call <see cref="Register"/>.</summary>
public static class MethodRegistry
{
    public const string MctFormerV1 = "mctformer-v1", MctFormerV2 = "mctformer-v2", VitCls = "vit-cls", Cam = "cam", WeakTr = "weaktr";

    static readonly object Gate = new();
    static readonly Dictionary<string, IWsssMethodFactory> Factories = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Backbone of the <c>cpu</c> preset: patch 8 on 96×96 (12×12 patches), 128 wide, 4 blocks, 4 heads, no stochastic depth.
    /// Chosen by measuring: a batch of 32 costs ≈ 2 CPU-seconds (≈ 1 s on 2 idle cores) versus ≈ 3.5 for 192 wide × 6 deep.
    /// </summary>
    public static VitConfig CpuBackbone => new()
    {
        ImageSize = 96, PatchSize = 8, EmbedDim = 128, Depth = 4, NumHeads = 4, DropPathRate = 0.0,
    };

    /// <summary>Class-to-patch layers summed by the cpu preset (the last 2 of its 4 blocks).</summary>
    public const int CpuCamLayers = 2;

    static MethodRegistry()
    {
        Register(MctFormer(MctFormerV1, MctFormerVariant.V1, "MCTformer-V1: one class token per class; maps = class-to-patch attention, refined by patch affinity."));
        Register(MctFormer(MctFormerV2, MctFormerVariant.V2, "MCTformer-V2: V1 plus a PatchCAM head; maps = class-to-patch ⊙ PatchCAM, refined by patch affinity."));
        Register(new WsssMethodFactory<VitClsConfig>(VitCls, "ViT classifier with one class token; map = class-agnostic class-token attention (baseline).",
            MethodJsonContext.Default.VitClsConfig,
            (p, k) => p == MethodPreset.Cpu ? new VitClsConfig { NumClasses = k, Backbone = CpuBackbone, CamLayers = CpuCamLayers } : new VitClsConfig { NumClasses = k },
            (c, k) => c with { NumClasses = k },
            (c, s) => c with { Backbone = c.Backbone with { ImageSize = s } },
            c => c.BackboneConfig, c => c.Validate(), c => new VitClsMethod(c)));
        Register(new WsssMethodFactory<CamBaselineConfig>(Cam, "ViT + global average pooling + linear classifier; map = CAM (baseline).",
            MethodJsonContext.Default.CamBaselineConfig,
            (p, k) => p == MethodPreset.Cpu ? new CamBaselineConfig { NumClasses = k, Backbone = CpuBackbone } : new CamBaselineConfig { NumClasses = k },
            (c, k) => c with { NumClasses = k },
            (c, s) => c with { Backbone = c.Backbone with { ImageSize = s } },
            c => c.BackboneConfig, c => c.Validate(), c => new CamMethod(c)));
        Register(new WsssMethodFactory<WeakSeg.Methods.WeakTr.WeakTrConfig>(WeakTr,
            "WeakTr: C class tokens, conv coarse CAM, adaptive attention fusion of all heads → fine CAM (fusion: aaf, mean_sum or fixed_random).",
            MethodJsonContext.Default.WeakTrConfig,
            (p, k) => p == MethodPreset.Cpu
                ? new WeakSeg.Methods.WeakTr.WeakTrConfig { NumClasses = k, Backbone = CpuBackbone, FfnHidden = CpuWeakTrFfnHidden }
                : new WeakSeg.Methods.WeakTr.WeakTrConfig { NumClasses = k },
            (c, k) => c with { NumClasses = k },
            (c, s) => c with { Backbone = c.Backbone with { ImageSize = s } },
            c => c.BackboneConfig, c => c.Validate(), c => new WeakTrMethod(c)));
    }

    /// <summary>WeakTr's FFN hidden width for the cpu preset: K·H / 4, as the paper's 18 = 72 / 4 for DeiT-S (12 blocks × 6 heads).</summary>
    public static int CpuWeakTrFfnHidden => Math.Max(1, CpuBackbone.Depth * CpuBackbone.NumHeads / 4);

    static WsssMethodFactory<MctFormerConfig> MctFormer(string name, MctFormerVariant variant, string description) => new(
        name, description, MethodJsonContext.Default.MctFormerConfig,
        (p, k) => p == MethodPreset.Cpu
            ? new MctFormerConfig { Variant = variant, NumClasses = k, Backbone = CpuBackbone, CamLayers = CpuCamLayers }
            : new MctFormerConfig { Variant = variant, NumClasses = k },
        (c, k) => c with { NumClasses = k },
        (c, s) => c with { Backbone = c.Backbone with { ImageSize = s } },
        c => c.BackboneConfig,
        c =>
        {
            var errors = c.Validate().ToList();
            if (c.Variant != variant) errors.Add($"Variant must be {variant} for method {name} (got {c.Variant})");
            return errors;
        },
        c => new MctFormerMethod(c));

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

    /// <summary>Builds a method from its preset config for <paramref name="numClasses"/> classes.</summary>
    public static IWsssMethod Create(string name, MethodPreset preset, int numClasses)
    {
        var f = Get(name);
        return f.Create(f.DefaultConfig(preset, numClasses));
    }

    public static MethodPreset ParsePreset(string text) => text.Trim().ToLowerInvariant() switch
    {
        "paper" => MethodPreset.Paper,
        "cpu" => MethodPreset.Cpu,
        _ => throw new WeakSegException($"unknown preset '{text}' (known: cpu, paper)"),
    };

    public static string PresetName(MethodPreset preset) => preset == MethodPreset.Cpu ? "cpu" : "paper";
}

/// <summary>JSON of method configs: snake_case keys, enums as strings, computed properties not written, unknown fields rejected.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow, IgnoreReadOnlyProperties = true, UseStringEnumConverter = true)]
[JsonSerializable(typeof(MctFormerConfig))]
[JsonSerializable(typeof(VitClsConfig))]
[JsonSerializable(typeof(CamBaselineConfig))]
[JsonSerializable(typeof(WeakSeg.Methods.WeakTr.WeakTrConfig))]
public sealed partial class MethodJsonContext : JsonSerializerContext;
