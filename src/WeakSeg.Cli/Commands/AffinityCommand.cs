using System.CommandLine;
using System.Globalization;
using WeakSeg.Refinement;
using WeakSeg.Refinement.Affinity;
using WeakSeg.Cli.Options;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg affinity train|infer`: PSA's AffinityNet stage on a ViT backbone (MCTformer's multi-stage pipeline).</summary>
public static class AffinityCommand
{
    public static Command Create()
    {
        var cmd = new Command("affinity", "Affinity network (PSA): learn pixel affinities from class maps, then refine maps by a random walk.");
        cmd.Subcommands.Add(CreateTrain());
        cmd.Subcommands.Add(CreateInfer());
        return cmd;
    }

    static Command CreateTrain()
    {
        var d = new AffinityRunConfig();
        var cams = new Option<string>("--cams") { Description = "Directory of class maps NAME.npy + NAME.classes.npy of the training split.", Required = true };
        var data = new Option<string>("--data") { Description = "Dataset root in VOC layout.", Required = true };
        var split = new Option<string>("--split") { Description = "Training split.", DefaultValueFactory = _ => d.Split };
        var outDir = new Option<string>("--out") { Description = "Affinity run directory (config.json, labels/, checkpoints/, model-final.bin).", Required = true };
        var config = new Option<string?>("--config") { Description = "JSON file with an affinity run configuration (as written to RUN/config.json); flags given explicitly override it." };
        var initRun = new Option<string?>("--init-run") { Description = "Initialise the backbone from RUN/model-final.bin of a trained run (e.g. MCTformer); its ViT shape is read from the file." };
        var initWeights = new Option<string?>("--init-weights") { Description = "Initialise the backbone from a weights file: TorchSharp format (shape read from it) or timm .safetensors (use --backbone)." };
        var heads = new Option<int?>("--heads") { Description = "Attention heads of the --init-run/--init-weights backbone (default: width / 64, as DeiT)." };
        var backbone = new Option<string>("--backbone") { Description = $"ViT preset when the shape is not read from weights: {string.Join(", ", WeakSeg.Models.Vit.VitConfig.PresetNames)}.", DefaultValueFactory = _ => AffinityTrainRequest.DefaultBackbone };
        var steps = new Option<long?>("--steps") { Description = "Optimizer steps (default: 5 epochs, PSA train_aff.py)." };
        var batch = new Option<int?>("--batch-size") { Description = $"Images per step (PSA: {d.Trainer.BatchSize})." };
        var crop = new Option<int?>("--crop-size") { Description = $"Square training crop, a multiple of the patch size (PSA: {d.CropSize})." };
        var lr = new Option<double?>("--lr") { Description = $"Peak AdamW learning rate of the backbone; the head uses ×{d.HeadLearningRateScale} (default {d.Trainer.BaseLr})." };
        var mode = new Option<string?>("--label-mode") { Description = "Affinity labels: 'alpha' (PSA: (1 − max)^α at a low and a high power, with CRF) or 'thresholds' (two thresholds on the maps)." };
        mode.AcceptOnlyFromAmong("alpha", "thresholds");
        var lowAlpha = new Option<float?>("--low-alpha") { Description = $"Low background power (MCTformer: {d.Labels.LowAlpha}; PSA: 4)." };
        var highAlpha = new Option<float?>("--high-alpha") { Description = $"High background power (MCTformer: {d.Labels.HighAlpha}; PSA: 32)." };
        var noCrf = new Option<bool>("--no-crf") { Description = "Alpha mode without the dense CRF." };
        var lowT = new Option<float?>("--low-threshold") { Description = $"Thresholds mode: max score below this → background (default {d.Labels.LowThreshold})." };
        var highT = new Option<float?>("--high-threshold") { Description = $"Thresholds mode: max score from this on → foreground (default {d.Labels.HighThreshold})." };
        var radius = new Option<int?>("--radius") { Description = $"Pair radius on the feature grid (PSA: {d.Radius})." };
        var runtime = new RuntimeOptions(RuntimePart.Seed | RuntimePart.Threads, "initialisation and data order", d.Trainer);
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its latest checkpoint (uses its config.json)." };
        var cmd = new Command("train", "Train an affinity network on affinity labels made from class maps (PSA loss bg/4 + fg/4 + neg/2).");
        foreach (var o in new Option[] { cams, data, split, outDir, config, initRun, initWeights, heads, backbone, steps, batch, crop, lr, mode, lowAlpha, highAlpha, noCrf,
                                         lowT, highT, radius }.Concat(runtime.All).Append(resume))
            cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            var runDir = r.GetValue(outDir)!;
            var request = new AffinityTrainRequest
            {
                CamDir = r.GetValue(cams)!, DataRoot = r.GetValue(data)!, Split = r.GetValue(split)!, RunDirectory = runDir,
                ConfigFile = r.GetValue(config), InitRun = r.GetValue(initRun), InitWeights = r.GetValue(initWeights), Heads = r.GetValue(heads),
                Backbone = r.GetResult(backbone) is { Implicit: false } ? r.GetValue(backbone) : null,
                Steps = r.GetValue(steps), BatchSize = r.GetValue(batch), CropSize = r.GetValue(crop), LearningRate = r.GetValue(lr),
                LabelMode = r.GetValue(mode) switch { "alpha" => AffinityLabelMode.AlphaPowers, "thresholds" => AffinityLabelMode.Thresholds, _ => null },
                LowAlpha = r.GetValue(lowAlpha), HighAlpha = r.GetValue(highAlpha), NoCrf = r.GetValue(noCrf),
                LowThreshold = r.GetValue(lowT), HighThreshold = r.GetValue(highT), Radius = r.GetValue(radius), Seed = RuntimeOptions.Given(r, runtime.Seed),
                Threads = runtime.ThreadsValue(r), Resume = r.GetValue(resume),
            };
            var summary = CliProgress.Run("affinity training", p => AffinityRun.Train(request, p));
            if (summary.Init is { } init) Console.WriteLine($"backbone init: {init}");
            var ignored = double.IsNaN(summary.IgnoredPixelShare) ? "-" : (100 * summary.IgnoredPixelShare).ToString("F1", CultureInfo.InvariantCulture);
            Console.WriteLine($"affinity labels: wrote {summary.LabelImagesWritten} to {AffinityRun.LabelDir(runDir)} ({ignored} % unsure pixels)");
            var t = summary.Training;
            Console.WriteLine(t.Completed
                ? $"trained {t.Step} steps, last loss {t.LastLoss.ToString("0.0000", CultureInfo.InvariantCulture)}; weights: {t.FinalWeightsPath}"
                : $"stopped at step {t.Step}; resume with --resume");
            return t.Completed ? 0 : 1;
        });
        return cmd;
    }

    static Command CreateInfer()
    {
        var run = new Option<string>("--run") { Description = "Affinity run directory (config.json + model-final.bin).", Required = true };
        var cams = new Option<string>("--cams") { Description = "Directory of class maps to refine.", Required = true };
        var data = new Option<string>("--data") { Description = "Dataset root in VOC layout (the images).", Required = true };
        var outDir = new Option<string>("--out") { Description = "Output directory for refined maps (NAME.npy + NAME.classes.npy; background threshold 0.5 = PSA's argmax).", Required = true };
        var walk = WalkOptions.Create(withThreshold: true);
        var runtime = new RuntimeOptions(RuntimePart.Threads);
        var overwrite = new Option<bool>("--overwrite") { Description = "Rewrite outputs that already exist (default: skip them)." };
        var shard = ShardOption.Create();
        var cmd = new Command("infer", "Refine class maps by a random walk over the learned affinities (PSA infer_aff.py); writes maps for eval-cam and pseudo.");
        foreach (var o in new Option[] { run, cams, data, outDir }.Concat(walk.All(true)).Concat(runtime.All).Append(overwrite).Append(shard)) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            var outPath = r.GetValue(outDir)!;
            var part = ShardOption.Resolve(r, shard);
            var (written, skipped, walkConfig) = CliProgress.Run("random walk", p => AffinityInference.RefineWithRun(r.GetValue(run)!, r.GetValue(cams)!,
                r.GetValue(data)!, outPath, radius => walk.Read(r, radius), runtime.ThreadsValue(r), r.GetValue(overwrite), p, part));
            Console.WriteLine($"wrote {written} refined maps to {outPath}, skipped {skipped} existing (β {walkConfig.Beta}, 2^{walkConfig.LogT} steps, radius {walkConfig.Radius}){ShardOption.Suffix(part)}");
            return 0;
        });
        return cmd;
    }
}
