using WeakSeg.Methods;
using WeakSeg.Segmentation;
using WeakSeg.Training;

namespace WeakSeg.Pipelines;

/// <summary>
/// One named preset: what it means for every part of a run. A method's recipe takes its model from the method's configuration record
/// (<see cref="IMethodConfig{TSelf}.Paper"/> / <see cref="IMethodConfig{TSelf}.Cpu"/>, with no class count: the dataset gives it), its
/// trainer from <see cref="Trainer"/> (or the method's own schedule laid over it) and its augmentation from <see cref="Augmentation"/>;
/// the retraining stage takes <see cref="Segmenter"/> (or a DeepLab with <see cref="DeepLab"/>).
/// </summary>
/// <param name="Preset">the preset's value</param>
/// <param name="Summary">what the preset is for (help texts)</param>
/// <param name="Trainer">the generic CAM trainer options (a method with its own schedule lays it over them)</param>
/// <param name="Augmentation">the CAM training augmentation</param>
/// <param name="Segmenter">the segmenter retrained on the pseudo labels (no class count: the dataset gives it)</param>
/// <param name="DeepLab">the DeepLab head when a DeepLab is retrained instead</param>
public sealed record PresetBundle(MethodPreset Preset, string Summary, TrainerOptions Trainer, AugmentationSettings Augmentation,
    SegmentationConfig Segmenter, DeepLabSettings DeepLab)
{
    /// <summary>The preset's name (<c>--preset NAME</c>, config.json's "preset").</summary>
    public string Name => Presets.Name(Preset);

    /// <summary>The retraining network <paramref name="model"/> of this preset: the segmenter, or a DeepLab with this preset's head and
    /// its pretrained trunk at 0.1 × the rate (DeepLab: the new classifier at 10 × the trunk's rate); every other field is the segmenter's.</summary>
    public SegmentationConfig Segmentation(SegmentationModel model) => model == SegmentationModel.Segmenter
        ? Segmenter
        : Segmenter with { Model = model, DeepLab = DeepLab, EncoderLearningRateScale = 0.1 };

    /// <summary>The training recipe of <paramref name="method"/> under this preset, with no class count (<see cref="TrainRecipe.For(Data.VocDataset)"/>).</summary>
    public TrainRecipe Recipe(string method)
    {
        var factory = MethodRegistry.Get(method);
        var model = factory.DefaultConfig(Preset);
        return new TrainRecipe(factory.Name, model, TrainRecipe.MethodSchedule(model, Trainer), Augmentation);
    }
}

/// <summary>The table of named presets: the one place that says what <c>cpu</c> and <c>paper</c> mean (its rows are read by
/// <see cref="TrainRecipe.Preset"/>, the pipeline options and the <c>--preset</c> help).</summary>
public static class Presets
{
    /// <summary>
    /// paper: the config records' defaults (DeiT-S 224, <see cref="TrainerOptions"/>' DeiT/MCTformer recipe, timm's augmentation,
    /// WeakTr's segmenter). cpu: sized for the built-in 96×96 benchmark on 2 cores: the methods' cpu configurations (the vit-cpu-128x4
    /// backbone), batch 32, lr 1e-3 with 30 warm-up steps, <see cref="TrainRecipe.CpuSteps"/> steps, RandomResizedCrop area ≥ 0.5 so that
    /// crops of the small images keep the image-level labels mostly true, and the vit-cpu-192x4 segmenter.
    /// </summary>
    public static IReadOnlyList<PresetBundle> All { get; } =
    [
        new(MethodPreset.Cpu, "small ViTs for the 96×96 built-in benchmark on 2 CPU cores",
            new TrainerOptions
            {
                Steps = TrainRecipe.CpuSteps, BatchSize = 32, BaseLr = 1e-3, MinLr = 1e-5, WarmupStartLr = 1e-6, WarmupSteps = 30,
                CheckpointEvery = 100, LogEvery = 10,
            },
            new AugmentationSettings { MinAreaScale = 0.5 },
            SegmentationConfig.Cpu, DeepLabSettings.Cpu),
        new(MethodPreset.Paper, "the papers' setups: DeiT-S, their schedules and augmentation",
            new TrainerOptions(), new AugmentationSettings(), SegmentationConfig.Paper, DeepLabSettings.Paper),
    ];

    /// <summary>The preset of <paramref name="preset"/>.</summary>
    public static PresetBundle Get(MethodPreset preset) => All.First(b => b.Preset == preset);

    /// <summary>The preset named <paramref name="name"/> (case and surrounding spaces ignored); another name is an error listing them.</summary>
    public static PresetBundle Get(string name) => Get(Parse(name));

    /// <summary>The names, in table order (the default, cpu, first).</summary>
    public static IReadOnlyList<string> Names => All.Select(b => b.Name).ToList();

    /// <summary>"cpu (…), paper (…)": every preset with its summary, for help texts.</summary>
    public static string Described => string.Join("; ", All.Select(b => $"{b.Name}: {b.Summary}"));

    public static string Name(MethodPreset preset) => preset switch
    {
        MethodPreset.Cpu => "cpu",
        MethodPreset.Paper => "paper",
        _ => throw new ArgumentOutOfRangeException(nameof(preset), preset, null),
    };

    public static MethodPreset Parse(string text)
    {
        var key = text.Trim().ToLowerInvariant();
        foreach (var bundle in All)
            if (bundle.Name == key) return bundle.Preset;
        throw new WeakSegException($"unknown preset '{text}' (known: {string.Join(", ", Names)})");
    }
}
