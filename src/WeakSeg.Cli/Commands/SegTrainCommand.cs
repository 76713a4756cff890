using System.CommandLine;
using System.Globalization;
using WeakSeg.Pipelines;
using WeakSeg.Segmentation;
using WeakSeg.Cli.Options;
using WeakSeg.Cli.Output;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg seg-train`: WeakTr online retraining (ViT + gradient-clipping decoder), or a DeepLab on the ImageNet ResNet-18, on pseudo
/// labels or ground truth.</summary>
public static class SegTrainCommand
{
    public static Command Create()
    {
        var labels = new Option<string>("--labels") { Description = "Pseudo-label directory (NAME.png label maps from `weakseg pseudo`), or 'gt' to train on the dataset's ground-truth masks (full-supervision upper bound).", Required = true };
        var data = new Option<string>("--data") { Description = "Dataset root in VOC layout.", Required = true };
        var outDir = new Option<string>("--out") { Description = "Run directory (config.json, checkpoints/, metrics.jsonl, model-final.bin).", Required = true };
        var split = new Option<string>("--split") { Description = "Training split list ImageSets/Segmentation/SPLIT.txt.", DefaultValueFactory = _ => "train_aug" };
        var decoder = new Option<string>("--decoder") { Description = "gradclip: WeakTr's gradient-clipping decoder; naive: plain cross-entropy (ablation).", DefaultValueFactory = _ => "gradclip" };
        decoder.AcceptOnlyFromAmong("gradclip", "naive");
        var preset = PresetOption.Create("cpu: small ViT, crop 96, S = 24 (built-in benchmark); paper: DeiT-S, crop 480, S = 120, τ = 1.2, SGD lr 1e-4.");
        var model = new Option<string>("--model")
        {
            Description = "segmenter: WeakTr's ViT + mask-transformer decoder; deeplab-largefov / deeplab-aspp: DeepLab LargeFOV or ASPP on the " +
                          "ImageNet ResNet-18 of the package, dilated to output stride 8 (trunk at 0.1 × the rate).",
            DefaultValueFactory = _ => "segmenter",
        };
        model.AcceptOnlyFromAmong([.. SegmentationModels.Names]);
        var steps = new Option<long?>("--steps") { Description = "Optimizer steps (default: the preset's)." };
        var batchSize = new Option<int?>("--batch-size") { Description = "Images per batch (default: the preset's)." };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate before poly decay (default: the preset's)." };
        var tau = new Option<double?>("--clip-start") { Description = "Clipping start value τ: clip only when the batch's mean per-pixel CE λ_global ≤ τ (default: the preset's; paper 1.2)." };
        var clipWarmup = new Option<long?>("--clip-warmup") { Description = "Steps at the start during which the gradient-clipping decoder never clips (default: the preset's; paper 0)." };
        var lrWarmup = new Option<long?>("--lr-warmup") { Description = "Steps of linear learning-rate warm-up from 0 (default: the preset's)." };
        var optimizer = new Option<string?>("--optimizer") { Description = "sgd (paper) or adamw (default: the preset's)." };
        optimizer.AcceptOnlyFromAmong("sgd", "adamw");
        var runtime = new RuntimeOptions(RuntimePart.Seed | RuntimePart.Device | RuntimePart.Threads);
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its latest checkpoint (same options required)." };
        var init = new Option<string?>("--init") { Description = "timm-format ViT safetensors to initialise the encoder (e.g. DeiT-S); for a DeepLab, torchvision-keyed ResNet safetensors (weakseg weights export)." };
        var cmd = new Command("seg-train", "WeakTr online retraining: train a ViT segmenter with the gradient-clipping decoder on CAM pseudo labels (or ground truth).");
        foreach (var o in new Option[] { labels, data, outDir, split, decoder, preset, model, steps, batchSize, lr, tau, clipWarmup, optimizer, lrWarmup, runtime.Seed, runtime.Device, runtime.Threads, resume, init }) cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var config = Presets.Get(PresetOption.Read(parseResult, preset)).Segmentation(SegmentationModels.Parse(parseResult.GetValue(model)!));
            config = config with { Loss = parseResult.GetValue(decoder) == "naive" ? SegmentationDecoderLoss.Naive : SegmentationDecoderLoss.GradientClipping };
            if (parseResult.GetValue(steps) is { } s) config = config with { Steps = s };
            if (parseResult.GetValue(batchSize) is { } b) config = config with { BatchSize = b };
            if (parseResult.GetValue(lr) is { } rate) config = config.WithLearningRate(rate);
            if (parseResult.GetValue(optimizer) is { } opt)
                config = config with { Optimizer = opt == "adamw" ? WeakSeg.Training.OptimizerKind.AdamW : WeakSeg.Training.OptimizerKind.Sgd };
            if (parseResult.GetValue(lrWarmup) is { } lw) config = config with { WarmupSteps = lw };
            if (parseResult.GetValue(tau) is { } t) config = config with { ClipStartValue = t };
            if (parseResult.GetValue(clipWarmup) is { } cw) config = config with { ClipWarmupSteps = cw };
            var labelsValue = parseResult.GetValue(labels)!;
            var request = new SegmentationTrainRequest
            {
                DataRoot = parseResult.GetValue(data)!,
                Split = parseResult.GetValue(split)!,
                LabelsDirectory = labelsValue.Equals("gt", StringComparison.OrdinalIgnoreCase) ? null : labelsValue,
                RunDirectory = parseResult.GetValue(outDir)!,
                Config = config,
                Seed = runtime.SeedValue(parseResult),
                Device = runtime.DeviceValue(parseResult),
                Threads = runtime.ThreadsValue(parseResult),
                Resume = parseResult.GetValue(resume),
                InitWeights = parseResult.GetValue(init),
                Group = WeakSeg.Runtime.ProcessGroup.World,
            };
            using var cancel = CancelOnCtrlC.Install();
            var result = CliProgress.Run("seg-train", p => SegmentationRun.Train(request, p, cancel.Token, log: Console.WriteLine));
            if (!result.Completed)
            {
                Console.WriteLine($"stopped at step {result.Step}; continue with --resume");
                return cancel.ExitCode;
            }
            Console.WriteLine(result.AlreadyComplete
                ? $"already complete at step {result.Step}, last loss {CliConsole.LossText(result.LastLoss)}; weights {result.FinalWeightsPath}"
                : string.Create(CultureInfo.InvariantCulture,
                    $"trained {result.Step} steps, last loss {result.LastLoss:0.0000}, {result.ImagesPerSecond:0.0} images/s; weights {result.FinalWeightsPath}"));
            return 0;
        });
        return cmd;
    }
}
