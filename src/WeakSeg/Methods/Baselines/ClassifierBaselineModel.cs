using TorchSharp.Modules;
using WeakSeg.Models;
using WeakSeg.Models.Vit;

namespace WeakSeg.Methods.Baselines;

/// <summary>
/// A baseline ViT with one linear classifier <c>head</c> (D → K) built after the backbone; the config is validated before the
/// backbone is built. Keys: timm names plus <c>head.{weight,bias}</c>.
/// </summary>
public abstract class ClassifierBaselineModel<TConfig> : VisionTransformer where TConfig : class, IMethodConfig
{
    readonly Linear head;

    protected ClassifierBaselineModel(TConfig config, string name) : base(Validated(config), name)
    {
        MethodConfig = config;
        head = WeightInit.ClassifierHead(Vit(config).EmbedDim, config.NumClasses);
        register_module(nameof(head), head);
    }

    static VitConfig Validated(TConfig config)
    {
        config.EnsureValid();
        return Vit(config);
    }

    static VitConfig Vit(TConfig config) => config.BackboneConfig ?? throw new WeakSegException($"{config.Title} needs a ViT backbone");

    public TConfig MethodConfig { get; }

    /// <summary>The classifier (registered as <c>head</c>).</summary>
    protected Linear Head => head;
}
