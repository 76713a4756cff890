using System.CommandLine;
using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Models.Vit;
using WeakSeg.Runtime;
using WeakSeg.Training;

namespace WeakSeg.Cli.Commands;

/// <summary>
/// Hidden `weakseg affinity dev-mctformer-maps`: trains a small MCTformer-V2 with the generic Trainer and writes its refined maps for a
/// split, so the refinement stage can be measured before `weakseg train/cam` exist on this branch. Not a user-facing verb.
/// </summary>
internal static class AffinityDevMapsCommand
{
    public static Command Create()
    {
        var data = new Option<string>("--data") { Required = true };
        var run = new Option<string>("--run") { Required = true };
        var cams = new Option<string>("--cams") { Required = true };
        var steps = new Option<long>("--steps") { DefaultValueFactory = _ => 1500 };
        var size = new Option<int>("--size") { DefaultValueFactory = _ => 96 };
        var threads = new Option<int>("--threads") { DefaultValueFactory = _ => 0 };
        var cmd = new Command("dev-mctformer-maps", "(development) train a small MCTformer-V2 and write its maps") { Hidden = true };
        foreach (var o in new Option[] { data, run, cams, steps, size, threads }) cmd.Options.Add(o);
        cmd.SetAction(r =>
        {
            var dataset = VocDataset.Open(r.GetValue(data)!, "train");
            int crop = r.GetValue(size);
            var config = new MctFormerConfig
            {
                NumClasses = dataset.NumClasses, CamLayers = 2,
                Backbone = new VitConfig { ImageSize = crop, PatchSize = 8, EmbedDim = 96, Depth = 4, NumHeads = 3, DropPathRate = 0.05 },
            };
            var options = new TrainerOptions { Steps = r.GetValue(steps), BatchSize = 16, BaseLr = 5e-4, MinLr = 1e-5, WarmupSteps = r.GetValue(steps) / 10, Threads = r.GetValue(threads), CheckpointEvery = 500 };
            var device = TorchRuntime.Initialize("cpu", options.Threads);
            TorchRuntime.Seed(0);
            var model = new MctFormerModel(config);
            var runDir = r.GetValue(run)!;
            if (!File.Exists(Path.Combine(runDir, "model-final.bin")))
            {
                var loader = new BatchLoader(dataset.Samples, dataset.NumClasses, new TrainTransform { CropSize = crop, MinAreaScale = 0.35 }, options.BatchSize, 0, loadMasks: false);
                var stream = new DelegateBatchStream(s => loader.Stream(s).Select(b => { var (i, l) = b.ToTensors(device); return new TrainBatch(i, l); }));
                var trainable = new MctTrainable(model);
                var result = CliProgress.Run("MCTformer (dev)", p => new Trainer(options, runDir).Run(trainable, stream, Directory.Exists(Path.Combine(runDir, "checkpoints")), p));
                Console.WriteLine($"trained {result.Step} steps, loss {result.LastLoss}");
            }
            else CheckpointStore.LoadModel(Path.Combine(runDir, "model-final.bin"), model);
            var camDir = r.GetValue(cams)!;
            CliProgress.Run("maps (dev)", p =>
            {
                var transform = new EvalTransform();
                for (int n = 0; n < dataset.Samples.Count; n++)
                {
                    using var scope = torch.NewDisposeScope();
                    var s = dataset.Samples[n];
                    var (chw, h, w) = transform.Apply(ImageCodec.Load(s.ImagePath));
                    var image = torch.tensor(chw, new long[] { 3, h, w });
                    var maps = MctFormerInference.LocalizeImage(model, image, s.Classes.Select(c => c - 1).ToArray());
                    CamMapFile.Write(camDir, s.Name, maps.contiguous().data<float>().ToArray(), s.Classes, h, w);
                    p.Report(new ProgressUpdate(n + 1, dataset.Samples.Count));
                }
            });
            return 0;
        });
        return cmd;
    }

    sealed class MctTrainable(MctFormerModel model) : ITrainable
    {
        public torch.nn.Module Model => model;
        public LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context)
        {
            var output = model.Forward(batch.Images);
            return new LossTerms(MctFormerLoss.Total(output, batch.Labels));
        }
    }
}
