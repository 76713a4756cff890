using System.CommandLine;
using System.Globalization;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.Pipelines;
using WeakSeg.Segmentation;
using WeakSeg.Cli.Options;

namespace WeakSeg.Cli.Commands;

/// <summary>
/// The options of one pipeline run besides its method and output folder, shared by `pipeline` and `compare` (which passes the same
/// values to the pipeline of every method it compares).
/// </summary>
internal sealed class PipelineOptions
{
    readonly RecipeOptions _recipe = new();
    readonly Option<string?> _data = new("--data") { Description = "Dataset root in VOC layout (default: generate the built-in benchmark into OUT/data)." };
    readonly Option<string> _split = new("--split") { Description = "Training split: image labels for the CAM model, pseudo labels for the segmenter; its masks score cam_miou and pseudo_miou.", DefaultValueFactory = _ => "train" };
    readonly Option<string> _valSplit = new("--val-split") { Description = "Split scored by val_miou and upper_bound_miou.", DefaultValueFactory = _ => "val" };
    readonly Option<string> _preset = PresetOption.CreateListed("Preset of every stage (CAM model, trainer, augmentation, segmenter):");
    readonly Option<string?> _config = new("--config") { Description = "JSON laid over the CAM recipe: {\"model\": {...}, \"trainer\": {...}, \"augmentation\": {...}} (as for `weakseg train`)." };
    readonly Option<string?> _segConfig = new("--seg-config") { Description = "Segmenter configuration JSON (the \"config\" object of a seg-train run's config.json) instead of the preset's." };
    readonly Option<long?> _camSteps = new("--cam-steps") { Description = "CAM training steps (default: the preset's)." };
    readonly Option<string?> _segModel = new("--seg-model")
    {
        Description = "Network retrained on the pseudo labels: segmenter (WeakTr's ViT + mask-transformer decoder, default), deeplab-largefov or " +
                      "deeplab-aspp (DeepLab on the ImageNet ResNet-18, output stride 8), with the preset's settings for it. Not with --seg-config " +
                      "(whose \"model\" field chooses).",
    };
    readonly Option<long?> _segSteps = new("--seg-steps") { Description = "Segmenter training steps (default: the preset's)." };
    readonly Option<string?> _map = MapOption.CreateOptional("Map for the pseudo labels: refined, fused, class-to-patch, patch-cam or lam (MoRe: class-token × patch-token) (default: paper preset refined, the papers' final map; cpu preset class-to-patch, the best map of a ViT trained from scratch).");
    readonly Option<string> _scales = ScalesOption.Create("Comma-separated map inference scales.", new LocalizationOptions().Scales);
    readonly Option<bool> _noFlip = new("--no-flip") { Description = "Maps without the horizontally flipped image." };
    readonly Option<string> _thresholds = new("--thresholds") { Description = "Background thresholds of the CAM sweep: START:STOP:STEP or a comma list.", DefaultValueFactory = _ => "0:0.95:0.05" };
    readonly Option<double?> _threshold = new("--threshold") { Description = $"Background threshold of the pseudo labels (default: the method's preset value from its official code, which reads no pixel label: {PresetThresholds()})." };
    readonly Option<bool> _oracleThreshold = new("--oracle-threshold") { Description = "Take the pseudo-label threshold from the sweep on the training split's ground-truth masks (the official scripts' practice; uses pixel labels, marked \"oracle\" in report.json)." };
    readonly Option<string> _decoders = new("--decoders") { Description = "Comma list of decoders retrained on the pseudo labels: gradclip, naive. The first gives val_miou.", DefaultValueFactory = _ => "gradclip" };
    readonly Option<bool> _retrain = new("--retrain-segmenter") { Description = "For a method with its own segmentation decoder (single-stage): also retrain the --decoders segmenters on the pseudo labels (val_miou stays the method's decoder; theirs go to val_miou_by_decoder). Other methods always retrain." };
    readonly Option<bool> _noUpperBound = new("--no-upper-bound") { Description = "Skip the segmenter trained on ground-truth masks (upper_bound_miou)." };
    readonly Option<bool> _crf = new("--crf") { Description = "Dense CRF on the val probabilities (a retrained segmenter: WeakTr's kernels; a method's own decoder: the method's kernels)." };
    readonly Option<string> _stopAfter = new("--stop-after") { Description = "cam (maps + cam_miou), pseudo (+ pseudo_miou) or segmentation (everything).", DefaultValueFactory = _ => "segmentation" };
    readonly RuntimeOptions _runtime = new(RuntimePart.Seed | RuntimePart.Device | RuntimePart.Threads | RuntimePart.Workers, "every training stage");
    readonly Option<int> _rounds = new("--rounds") { Description = "Training rounds, each from the previous round's weights on the labels the method makes after it (methods with label-updating rounds: auxsegnet).", DefaultValueFactory = _ => 1 };
    readonly SaliencyOptions _saliency = new();

    public PipelineOptions()
    {
        _segModel.AcceptOnlyFromAmong([.. SegmentationModels.Names]);
        _stopAfter.AcceptOnlyFromAmong("cam", "pseudo", "segmentation");
    }

    public IEnumerable<Option> All => new Option[] { _data, _split, _valSplit, _preset, _config, _segConfig, _segModel, _camSteps, _segSteps, _map, _scales, _noFlip,
        _thresholds, _threshold, _oracleThreshold, _decoders, _retrain, _noUpperBound, _crf, _stopAfter, _rounds }.Concat(_runtime.All).Concat(_saliency.All).Concat(_recipe.All);

    /// <summary>The pipeline options of <paramref name="method"/> writing to <paramref name="outDirectory"/>.</summary>
    public WsssPipelineOptions Build(ParseResult parseResult, string method, string outDirectory)
    {
        var preset = PresetOption.Read(parseResult, _preset);
        var bundle = Presets.Get(preset);
        var recipe = bundle.Recipe(method);                                     // no class count: the pipeline takes K from its dataset
        if (parseResult.GetValue(_config) is { } configPath) recipe = recipe.Overlay(configPath);
        recipe = _recipe.Apply(recipe, parseResult);
        if (parseResult.GetValue(_camSteps) is { } cs)
            recipe = recipe with { Trainer = recipe.Trainer.WithSteps(cs) };
        var segModel = parseResult.GetValue(_segModel) is { } modelName ? SegmentationModels.Parse(modelName) : SegmentationModel.Segmenter;
        if (parseResult.GetValue(_segConfig) is not null && parseResult.GetValue(_segModel) is not null)
            throw new WeakSegException("--seg-model: give the network in the --seg-config file's \"model\" field instead (not both)");
        var seg = parseResult.GetValue(_segConfig) is { } segPath ? ReadSegmentationConfig(segPath) : bundle.Segmentation(segModel);
        if (parseResult.GetValue(_segSteps) is { } ss) seg = seg.WithSteps(ss);
        return new WsssPipelineOptions
        {
            OutDirectory = outDirectory,
            DataRoot = parseResult.GetValue(_data),
            TrainSplit = parseResult.GetValue(_split)!,
            ValSplit = parseResult.GetValue(_valSplit)!,
            CamRecipe = recipe,
            Preset = preset,
            Localization = new LocalizationOptions { Scales = ScalesOption.Parse(parseResult.GetValue(_scales)!), Flip = !parseResult.GetValue(_noFlip) },
            MapKind = MapOption.ReadOptional(parseResult, _map),
            Thresholds = CamThresholdSweep.ParseThresholds(parseResult.GetValue(_thresholds)!),
            PseudoThreshold = parseResult.GetValue(_threshold),
            OracleThreshold = parseResult.GetValue(_oracleThreshold),
            Segmentation = seg,
            Decoders = ParseDecoders(parseResult.GetValue(_decoders)!),
            RetrainSegmenter = parseResult.GetValue(_retrain) ? true : null,
            UpperBound = !parseResult.GetValue(_noUpperBound),
            Crf = parseResult.GetValue(_crf),
            StopAfter = parseResult.GetValue(_stopAfter) switch { "cam" => PipelineEnd.Cam, "pseudo" => PipelineEnd.Pseudo, _ => PipelineEnd.Segmentation },
            Seed = _runtime.SeedValue(parseResult),
            Device = _runtime.DeviceValue(parseResult),
            Threads = _runtime.ThreadsValue(parseResult),
            Workers = _runtime.WorkersValue(parseResult),
            Rounds = parseResult.GetValue(_rounds),
            Saliency = _saliency.Parse(parseResult),
            Group = WeakSeg.Runtime.ProcessGroup.World,
        };
    }

    /// <summary>"name value, …" of every registered method's preset pseudo-label threshold, for help texts.</summary>
    internal static string PresetThresholds() => string.Join(", ", MethodRegistry.Names.Select(n =>
        n + " " + MethodRegistry.Get(n).DefaultConfig(MethodPreset.Cpu).PseudoLabelThreshold.Value.ToString(CultureInfo.InvariantCulture)));

    internal static IReadOnlyList<SegmentationDecoderLoss> ParseDecoders(string text)
    {
        var names = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        if (names.Length == 0) throw new WeakSegException("--decoders: give at least one of gradclip, naive");
        return names.Select(n => n.ToLowerInvariant() switch
        {
            "gradclip" => SegmentationDecoderLoss.GradientClipping,
            "naive" => SegmentationDecoderLoss.Naive,
            _ => throw new WeakSegException($"--decoders: unknown decoder '{n}' (known: gradclip, naive)"),
        }).Distinct().ToList();
    }

    static SegmentationConfig ReadSegmentationConfig(string path)
    {
        if (!File.Exists(path)) throw WeakSegException.ForFile(path, "segmentation configuration not found");
        return SegmentationConfig.FromJson(File.ReadAllText(path), path);
    }
}
