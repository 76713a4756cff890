using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using WeakSeg.Methods;
using WeakSeg.Pipelines;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg train`: trains a registered WSSS method on image-level labels (preset → --config → flags).</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var cpu = TrainRecipe.Preset(BuiltInMethods.DemoMethod, MethodPreset.Cpu, 20);
        var paper = TrainRecipe.Preset(BuiltInMethods.DemoMethod, MethodPreset.Paper, 20);
        string Both(Func<TrainRecipe, object> f) => string.Create(CultureInfo.InvariantCulture, $"default: cpu {f(cpu)}, paper {f(paper)}");

        var method = new Option<string>("--method") { Description = $"Method: {string.Join(", ", MethodRegistry.Names)}.", Required = true };
        var data = new Option<string>("--data") { Description = "Dataset root in VOC layout.", Required = true };
        var outDir = new Option<string>("--out") { Description = "Run directory (config.json, checkpoints/, metrics.jsonl, model-final.bin).", Required = true };
        var split = new Option<string>("--split") { Description = "Training split.", DefaultValueFactory = _ => new TrainRequest { DataRoot = "", RunDirectory = "", Recipe = cpu }.Split };
        var preset = new Option<string>("--preset") { Description = "Starting configuration: cpu (small ViT for the 96×96 benchmark) or paper (DeiT-S 224).", DefaultValueFactory = _ => "cpu" };
        preset.AcceptOnlyFromAmong("cpu", "paper");
        var config = new Option<string?>("--config") { Description = "JSON file laid over the preset: {\"model\": {...}, \"trainer\": {...}, \"augmentation\": {...}}." };
        var steps = new Option<long?>("--steps") { Description = $"Optimizer steps ({Both(r => r.Trainer.Steps)})." };
        var batch = new Option<int?>("--batch-size") { Description = $"Images per step ({Both(r => r.Trainer.BatchSize)})." };
        var lr = new Option<double?>("--lr") { Description = $"Peak learning rate ({Both(r => r.Trainer.BaseLr)})." };
        var warmup = new Option<long?>("--warmup") { Description = $"Warm-up steps ({Both(r => r.Trainer.WarmupSteps)})." };
        var imageSize = new Option<int?>("--image-size") { Description = $"Training crop = backbone input size ({Both(r => r.ImageSize)})." };
        var init = new Option<string?>("--init") { Description = "timm safetensors weights to start from (e.g. DeiT-S); prints loaded/missing/skipped/unexpected keys." };
        var seed = new Option<long?>("--seed") { Description = $"Seed of model init, data order and augmentation (default {cpu.Trainer.Seed})." };
        var device = new Option<string?>("--device") { Description = $"cpu or cuda[:N] (default {cpu.Trainer.Device})." };
        var threads = new Option<int?>("--threads") { Description = "libtorch intra-op threads (0 = libtorch's choice)." };
        var workers = new Option<int>("--workers") { Description = "Image-decoding threads (never changes the batches).", DefaultValueFactory = _ => new TrainRequest { DataRoot = "", RunDirectory = "", Recipe = cpu }.Workers };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its latest checkpoint (exact on CPU)." };
        var checkpointEvery = new Option<long?>("--checkpoint-every") { Description = $"Checkpoint interval in steps ({Both(r => r.Trainer.CheckpointEvery)})." };

        var recipeOptions = new RecipeOptions();
        var saliencyOptions = new SaliencyOptions();

        var cmd = new Command("train", "Train a registered WSSS method on image-level labels.");
        foreach (var o in new Option[] { method, data, outDir, split, preset, config, steps, batch, lr, warmup, imageSize, init, seed, device, threads, workers, resume, checkpointEvery }.Concat(recipeOptions.All).Concat(saliencyOptions.All))
            cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var presetValue = MethodRegistry.ParsePreset(parseResult.GetValue(preset)!);
            var recipe = TrainRecipe.Preset(parseResult.GetValue(method)!, presetValue, 20);
            if (parseResult.GetValue(config) is { } configPath) recipe = recipe.Overlay(configPath);
            recipe = recipeOptions.Apply(recipe, parseResult);
            if (parseResult.GetValue(imageSize) is { } size) recipe = recipe.WithImageSize(size);
            var t = recipe.Trainer;
            t = t with
            {
                Steps = parseResult.GetValue(steps) ?? t.Steps,
                BatchSize = parseResult.GetValue(batch) ?? t.BatchSize,
                BaseLr = parseResult.GetValue(lr) ?? t.BaseLr,
                WarmupSteps = parseResult.GetValue(warmup) ?? t.WarmupSteps,
                Seed = parseResult.GetValue(seed) ?? t.Seed,
                Device = parseResult.GetValue(device) ?? t.Device,
                Threads = parseResult.GetValue(threads) ?? t.Threads,
                CheckpointEvery = parseResult.GetValue(checkpointEvery) ?? t.CheckpointEvery,
            };
            // Steps shorter than the warm-up, from --steps or from --config, get the same treatment, unless the warm-up was chosen too.
            bool warmupChosen = parseResult.GetValue(warmup) is not null
                || (parseResult.GetValue(config) is { } chosenIn && WeakSeg.IO.JsonFiles.ReadObject(chosenIn)[TrainRecipe.TrainerKey]?["warmup_steps"] is not null);
            if (!warmupChosen && t.WarmupSteps > t.Steps && t.Steps >= 1)
            {
                var source = parseResult.GetValue(steps) is not null ? "--steps" : "steps from --config";
                t = t with { WarmupSteps = t.Steps / 10 };
                Console.WriteLine($"{source} {t.Steps} is shorter than the preset's warm-up; warm-up set to {t.WarmupSteps} steps (pass --warmup to choose)");
            }
            recipe = recipe with { Trainer = t };
            var request = new TrainRequest
            {
                DataRoot = parseResult.GetValue(data)!,
                Split = parseResult.GetValue(split)!,
                RunDirectory = parseResult.GetValue(outDir)!,
                Recipe = recipe,
                Preset = parseResult.GetValue(config) is null ? MethodRegistry.PresetName(presetValue) : MethodRegistry.PresetName(presetValue) + "+config",
                InitWeights = parseResult.GetValue(init),
                Resume = parseResult.GetValue(resume),
                Workers = parseResult.GetValue(workers),
                Saliency = saliencyOptions.Parse(parseResult),
                Group = WeakSeg.Runtime.ProcessGroup.World,
            };
            using var cancel = CancelOnCtrlC.Install();
            var outcome = CliProgress.Run($"train {recipe.Method}", p => TrainPipeline.Run(request, Console.WriteLine, p, cancel.Token));
            var r = outcome.Result;
            var inv = CultureInfo.InvariantCulture;
            if (r.AlreadyComplete)
                Console.WriteLine(string.Create(inv, $"already complete at step {r.Step}, last loss {LossText(r.LastLoss)}; weights {r.FinalWeightsPath}"));
            else if (r.Completed)
                Console.WriteLine(string.Create(inv, $"trained {r.Step} steps in {r.Seconds:F1} s ({r.ImagesPerSecond:F1} img/s), last loss {r.LastLoss:F4}; weights {r.FinalWeightsPath}"));
            else
                Console.WriteLine(string.Create(inv, $"stopped at step {r.Step}; checkpoint {r.LatestCheckpoint?.Directory}; continue with --resume"));
            return r.Completed ? 0 : cancel.ExitCode;
        });
        return cmd;
    }

    /// <summary>A loss for the summary line ("unknown" when nothing recorded it).</summary>
    internal static string LossText(float loss) =>
        float.IsFinite(loss) ? loss.ToString("F4", CultureInfo.InvariantCulture) : "unknown (not recorded by this run's checkpoint or metrics.jsonl)";
}

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM (what <c>docker stop</c>, systemd and batch schedulers send) request cancellation instead of ending the
/// process: training writes a checkpoint at the end of its step and returns, so a rerun resumes exactly. The exit code is then
/// 128 + the signal's number, as a shell reports a process ended by it: 130 for SIGINT, 143 for SIGTERM. A second signal ends the
/// process at once (the default action).
/// </summary>
internal sealed class CancelOnCtrlC : IDisposable
{
    readonly CancellationTokenSource _source = new();
    readonly List<PosixSignalRegistration> _registrations = [];
    int _signal;                                                            // the first signal's number; 0 = none yet

    CancelOnCtrlC()
    {
        Handle(PosixSignal.SIGINT, 2, "Ctrl-C");
        Handle(PosixSignal.SIGTERM, 15, "SIGTERM");
    }

    void Handle(PosixSignal signal, int number, string name)
    {
        try
        {
            _registrations.Add(PosixSignalRegistration.Create(signal, context =>
            {
                if (Interlocked.CompareExchange(ref _signal, number, 0) != 0) return;        // a second signal: the default action
                context.Cancel = true;
                Console.Error.WriteLine($"{name}: stopping after this step, with a checkpoint (a second Ctrl-C or SIGTERM kills)…");
                _source.Cancel();
            }));
        }
        catch (PlatformNotSupportedException) { }                           // a platform without this signal: its default action
    }

    public static CancelOnCtrlC Install() => new();
    public CancellationToken Token => _source.Token;

    /// <summary>128 + the number of the signal that stopped the run (130 SIGINT, 143 SIGTERM); 130 when none did.</summary>
    public int ExitCode => 128 + (Volatile.Read(ref _signal) is > 0 and var n ? n : 2);

    /// <summary>Runs <paramref name="work"/>; a stop it raises because of a signal prints one line (what stopped it and
    /// <paramref name="howToResume"/>) and returns <see cref="ExitCode"/>.</summary>
    public int Run(Func<CancellationToken, int> work, string howToResume)
    {
        try { return work(Token); }
        catch (OperationCanceledException) when (Token.IsCancellationRequested)
        {
            Console.Error.WriteLine($"stopped by {(ExitCode == 143 ? "SIGTERM" : "Ctrl-C")}; {howToResume}");
            return ExitCode;
        }
    }

    /// <summary>Stops handling the signals (the token source is left to the collector, so a late signal never meets a disposed one).</summary>
    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
    }
}
