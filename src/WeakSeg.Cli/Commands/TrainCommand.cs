using System.CommandLine;
using System.Globalization;
using WeakSeg.Methods;
using WeakSeg.Pipelines;
using WeakSeg.Cli.Options;
using WeakSeg.Cli.Output;

namespace WeakSeg.Cli.Commands;

/// <summary>`weakseg train`: trains a registered WSSS method on image-level labels (preset → --config → flags).</summary>
public static class TrainCommand
{
    public static Command Create()
    {
        var cpu = TrainRecipe.Preset(BuiltInMethods.DemoMethod, MethodPreset.Cpu);
        var paper = TrainRecipe.Preset(BuiltInMethods.DemoMethod, MethodPreset.Paper);
        string Both(Func<TrainRecipe, object> f) =>
            string.Create(CultureInfo.InvariantCulture, $"default: the method's preset, e.g. {BuiltInMethods.DemoMethod}: cpu {f(cpu)}, paper {f(paper)}");

        var method = new Option<string>("--method") { Description = $"Method: {string.Join(", ", MethodRegistry.Names)}.", Required = true };
        var data = new Option<string>("--data") { Description = "Dataset root in VOC layout.", Required = true };
        var outDir = new Option<string>("--out") { Description = "Run directory (config.json, checkpoints/, metrics.jsonl, model-final.bin).", Required = true };
        var split = new Option<string>("--split") { Description = "Training split.", DefaultValueFactory = _ => new TrainRequest { DataRoot = "", RunDirectory = "", Recipe = cpu }.Split };
        var preset = PresetOption.CreateListed("Starting configuration (model, trainer and augmentation of the method):");
        var config = new Option<string?>("--config") { Description = "JSON file laid over the preset: {\"model\": {...}, \"trainer\": {...}, \"augmentation\": {...}}." };
        var steps = new Option<long?>("--steps") { Description = $"Optimizer steps ({Both(r => r.Trainer.Steps)})." };
        var batch = new Option<int?>("--batch-size") { Description = $"Images per step ({Both(r => r.Trainer.BatchSize)})." };
        var lr = new Option<double?>("--lr") { Description = $"Peak learning rate ({Both(r => r.Trainer.BaseLr)})." };
        var warmup = new Option<long?>("--warmup") { Description = $"Warm-up steps ({Both(r => r.Trainer.WarmupSteps)})." };
        var imageSize = new Option<int?>("--image-size") { Description = $"Training crop = backbone input size ({Both(r => r.ImageSize)})." };
        var init = new Option<string?>("--init") { Description = "timm safetensors weights to start from (e.g. DeiT-S); prints loaded/missing/skipped/unexpected keys." };
        var runtime = new RuntimeOptions(RuntimePart.Seed | RuntimePart.Device | RuntimePart.Threads | RuntimePart.Workers, defaults: cpu.Trainer);   // given ones override --config
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --out from its latest checkpoint (exact on CPU)." };
        var checkpointEvery = new Option<long?>("--checkpoint-every") { Description = $"Checkpoint interval in steps ({Both(r => r.Trainer.CheckpointEvery)})." };

        var recipeOptions = new RecipeOptions();
        var saliencyOptions = new SaliencyOptions();

        var cmd = new Command("train", "Train a registered WSSS method on image-level labels.");
        foreach (var o in new Option[] { method, data, outDir, split, preset, config, steps, batch, lr, warmup, imageSize, init, runtime.Seed, runtime.Device, runtime.Threads, runtime.Workers, resume, checkpointEvery }.Concat(recipeOptions.All).Concat(saliencyOptions.All))
            cmd.Options.Add(o);
        cmd.SetAction(parseResult =>
        {
            var presetValue = PresetOption.Read(parseResult, preset);
            var recipe = TrainRecipe.Preset(parseResult.GetValue(method)!, presetValue);   // K comes from --data (TrainPipeline)
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
                Seed = RuntimeOptions.Given(parseResult, runtime.Seed) ?? t.Seed,
                Device = RuntimeOptions.Given(parseResult, runtime.Device) ?? t.Device,
                Threads = RuntimeOptions.Given(parseResult, runtime.Threads) ?? t.Threads,
                CheckpointEvery = parseResult.GetValue(checkpointEvery) ?? t.CheckpointEvery,
            };
            // Steps shorter than the warm-up, from --steps or from --config, get the same treatment, unless the warm-up was chosen too.
            bool warmupChosen = parseResult.GetValue(warmup) is not null
                || (parseResult.GetValue(config) is { } chosenIn && WeakSeg.IO.JsonFiles.ReadObject(chosenIn)[TrainRecipe.TrainerKey]?["warmup_steps"] is not null);
            if (!warmupChosen && t.WithWarmupWithinSteps() is var fitted && fitted != t)
            {
                var source = parseResult.GetValue(steps) is not null ? "--steps" : "steps from --config";
                t = fitted;
                Console.WriteLine($"{source} {t.Steps} is shorter than the preset's warm-up; warm-up set to {t.WarmupSteps} steps (pass --warmup to choose)");
            }
            recipe = recipe with { Trainer = t };
            var request = new TrainRequest
            {
                DataRoot = parseResult.GetValue(data)!,
                Split = parseResult.GetValue(split)!,
                RunDirectory = parseResult.GetValue(outDir)!,
                Recipe = recipe,
                Preset = parseResult.GetValue(config) is null ? Presets.Name(presetValue) : Presets.Name(presetValue) + "+config",
                InitWeights = parseResult.GetValue(init),
                Resume = parseResult.GetValue(resume),
                Workers = runtime.WorkersValue(parseResult),
                Saliency = saliencyOptions.Parse(parseResult),
                Group = WeakSeg.Runtime.ProcessGroup.World,
            };
            using var cancel = CancelOnCtrlC.Install();
            var outcome = CliProgress.Run($"train {recipe.Method}", p => TrainPipeline.Run(request, Console.WriteLine, p, cancel.Token));
            var r = outcome.Result;
            var inv = CultureInfo.InvariantCulture;
            if (r.AlreadyComplete)
                Console.WriteLine(string.Create(inv, $"already complete at step {r.Step}, last loss {CliConsole.LossText(r.LastLoss)}; weights {r.FinalWeightsPath}"));
            else if (r.Completed)
                Console.WriteLine(string.Create(inv, $"trained {r.Step} steps in {r.Seconds:F1} s ({r.ImagesPerSecond:F1} img/s), last loss {r.LastLoss:F4}; weights {r.FinalWeightsPath}"));
            else
                Console.WriteLine(string.Create(inv, $"stopped at step {r.Step}; checkpoint {r.LatestCheckpoint?.Directory}; continue with --resume"));
            return r.Completed ? 0 : cancel.ExitCode;
        });
        return cmd;
    }
}
