using WeakSeg.Models.Vit;
using WeakSeg.Models.Weights;
using WeakSeg.Training;
using static TorchSharp.torch;
using WeakSeg.IO;

namespace WeakSeg.Methods;

/// <summary>
/// Which localization map a method produces. Each method documents what the kinds mean for it:
/// MCTformer: class-to-patch attention / fused (V2: ⊙ ReLU(PatchCAM); V1: = class-to-patch) / refined (patch affinity · fused).
/// Baselines: their raw map (CAM, or the class-agnostic class-token attention) / the same map refined by the patch affinity of their own attention.
/// </summary>
public enum LocalizationMapKind
{
    /// <summary>Patch affinity · the method's map (MCTformer's final maps).</summary>
    Refined,

    /// <summary>The method's map before affinity refinement.</summary>
    Fused,

    /// <summary>Class-to-patch attention of the last layers (attention methods only).</summary>
    ClassToPatch,

    /// <summary>ReLU of the PatchCAM head alone (MCTformer+'s <c>patchcam</c> attention type).</summary>
    PatchCam,

    /// <summary>Localization-attribute map: class-token × patch-token dot products (MoRe's LAM), min-max per class.</summary>
    Lam,
}

/// <summary>The names of <see cref="LocalizationMapKind"/> used on the command line, in folder and stage names and in reports.</summary>
public static class LocalizationMapKindNames
{
    /// <summary>Every map name, in <see cref="LocalizationMapKind"/> order.</summary>
    public static IReadOnlyList<string> All => Enum.GetValues<LocalizationMapKind>().Select(Name).ToArray();

    public static string Name(LocalizationMapKind kind) => kind switch
    {
        LocalizationMapKind.Fused => "fused",
        LocalizationMapKind.ClassToPatch => "class-to-patch",
        LocalizationMapKind.PatchCam => "patch-cam",
        LocalizationMapKind.Lam => "lam",
        _ => "refined",
    };

    /// <exception cref="WeakSegException">an unknown name</exception>
    public static LocalizationMapKind Parse(string text) => text switch
    {
        "fused" => LocalizationMapKind.Fused,
        "class-to-patch" => LocalizationMapKind.ClassToPatch,
        "refined" => LocalizationMapKind.Refined,
        "patch-cam" => LocalizationMapKind.PatchCam,
        "lam" => LocalizationMapKind.Lam,
        _ => throw new WeakSegException($"--map: unknown map '{text}' (known: {string.Join(", ", All)})"),
    };
}

/// <summary>Multi-scale/flip inference settings shared by every method.</summary>
public sealed record LocalizationOptions
{
    /// <summary>Input scales; each scaled side is rounded to a multiple of the patch size. MCTformer's CAM script uses 1.0, 0.5, 1.5 (unverified; exposed as an option).</summary>
    public IReadOnlyList<double> Scales { get; init; } = new[] { 1.0, 0.5, 1.5 };

    /// <summary>Also run the horizontally flipped image and add its un-flipped maps.</summary>
    public bool Flip { get; init; } = true;

    public LocalizationMapKind MapKind { get; init; } = LocalizationMapKind.Refined;

    public void EnsureValid()
    {
        if (Scales.Count == 0 || Scales.Any(s => !(s > 0) || double.IsInfinity(s)))
            throw new WeakSegException("inference scales must be a non-empty list of positive numbers");
    }
}

/// <summary>
/// A weakly-supervised semantic segmentation method built for a fixed number of classes: trainable by the shared
/// <see cref="Trainer"/> (as an <see cref="ITrainable"/>), producing per-image localization maps, saving and loading its weights.
/// Instances come from <see cref="MethodRegistry"/>.
/// </summary>
public interface IWsssMethod : ITrainable, IDisposable
{
    /// <summary>Registry name, e.g. <c>mctformer-v2</c>.</summary>
    string Name { get; }

    /// <summary>The method configuration the model was built from (a config record).</summary>
    IMethodConfig Config { get; }

    /// <summary>Foreground classes K.</summary>
    int NumClasses { get; }

    /// <summary>The ViT backbone actually built (patch size, training input size); null for a method on a CNN.</summary>
    VitConfig? Backbone { get; }

    /// <summary>
    /// Raw (non-normalised) maps of all K classes on the patch grid for a batch: images [B, 3, h·p, w·p] → [B, K, h, w]. The kinds a
    /// method accepts are its registration's <see cref="IWsssMethodFactory.Maps"/>.
    /// Called under no_grad with the model in eval mode by <see cref="MultiScaleLocalization"/>.
    /// </summary>
    Tensor PatchGridMaps(Tensor images, LocalizationMapKind kind);

    /// <summary>
    /// Localization maps of the listed classes (1..K) at the image's size, each normalised to max 1 (the CAM protocol):
    /// image [3, H, W] normalised as for training → [K', H, W].
    /// </summary>
    Tensor Localize(Tensor image, IReadOnlyList<int> classes, LocalizationOptions options) =>
        MultiScaleLocalization.LocalizeImage(this, image, classes, options);

    /// <summary>Loads timm-format safetensors weights (pretrained backbone) and reports what was loaded.</summary>
    WeightImportReport ImportTimmWeights(string path) => TimmWeightImport.LoadFile(Model, path);

    /// <summary>Saves the weights (TorchSharp format, strict keys), atomically.</summary>
    void SaveWeights(string path)
    {
        AtomicFile.Commit(path, tmp => Model.save(tmp));
    }

    /// <summary>Loads weights written by <see cref="SaveWeights"/> or by the trainer (model-final.bin, checkpoints). Errors name the file.</summary>
    void LoadWeights(string path) => CheckpointStore.LoadModel(path, Model);
}
