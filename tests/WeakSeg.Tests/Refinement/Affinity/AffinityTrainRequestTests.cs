using WeakSeg.Methods.MctFormer;
using WeakSeg.Models.Vit;
using WeakSeg.Refinement.Affinity;
using WeakSeg.Runtime;
using WeakSeg.Tests.Data;
using WeakSeg.Tests.Support;
using WeakSeg.Training;

namespace WeakSeg.Tests.Refinement.Affinity;

/// <summary>How `affinity train` settings become the run configuration (the logic the CLI used to hold).</summary>
[Collection("Torch")]
public class AffinityTrainRequestTests
{
    [Fact]
    public void Defaults_train_five_epochs_of_the_split_on_the_small_vit()
    {
        using var dir = TestPaths.NewTempDir();
        var root = VocTestData.CreateBlocksDataset(dir.File("voc"), 7, 16, 16);
        var config = new AffinityTrainRequest { CamDir = dir.File("cams"), DataRoot = root, RunDirectory = dir.File("run"), BatchSize = 2 }.Resolve();
        Assert.Equal(5L * (7 / 2), config.Trainer.Steps);                       // PSA: 5 epochs of whole batches
        Assert.Equal((0L, 15L), (config.Trainer.WarmupSteps, config.Trainer.CheckpointEvery));   // both capped at the steps
        Assert.Equal(VitConfig.Small, config.Net.Backbone);
        Assert.Equal((Path.GetFullPath(dir.File("cams")), Path.GetFullPath(root), "train", (string?)null), (config.CamDir, config.DataRoot, config.Split, config.InitWeights));
        Assert.Equal(new AffinityRunConfig().Labels, config.Labels);
    }

    [Fact]
    public void Explicit_settings_lie_over_the_configuration_file()
    {
        using var dir = TestPaths.NewTempDir();
        var file = dir.File("aff.json");
        File.WriteAllText(file, AffinityRun.ToJson(new AffinityRunConfig { Net = AffinityTestData.TinyNet(), Radius = 3, CropSize = 64 }));
        var request = new AffinityTrainRequest { CamDir = "c", DataRoot = "d", RunDirectory = "r", ConfigFile = file, Steps = 12 };
        var kept = request.Resolve();
        Assert.Equal((AffinityTestData.TinyVit(), 3, 64, 12L), (kept.Net.Backbone, kept.Radius, kept.CropSize, kept.Trainer.Steps));

        var changed = (request with
        {
            Backbone = "tiny", Radius = 4, CropSize = 32, LearningRate = 1e-7, Seed = 9, Threads = 2, LabelMode = AffinityLabelMode.Thresholds,
            LowThreshold = 0.1f, HighThreshold = 0.9f, NoCrf = true,
        }).Resolve();
        Assert.Equal(VitConfig.Tiny, changed.Net.Backbone);
        Assert.Equal((4, 32, 9L, 2), (changed.Radius, changed.CropSize, changed.Trainer.Seed, changed.Trainer.Threads));
        Assert.Equal((1e-7, 1e-7, 1e-7), (changed.Trainer.BaseLr, changed.Trainer.MinLr, changed.Trainer.WarmupStartLr));   // the floor follows a smaller peak
        Assert.Equal((AffinityLabelMode.Thresholds, 0.1f, 0.9f, false), (changed.Labels.Mode, changed.Labels.LowThreshold, changed.Labels.HighThreshold, changed.Labels.UseCrf));
    }

    [Fact]
    public void A_resume_does_not_read_the_split_and_keeps_the_steps_of_the_file()
    {
        var config = new AffinityTrainRequest { CamDir = "c", DataRoot = "/no/such/dataset", RunDirectory = "r", Resume = true }.Resolve();
        Assert.Equal(new AffinityRunConfig().Trainer.Steps, config.Trainer.Steps);
    }

    [Fact]
    public void The_backbone_of_an_init_run_is_read_from_its_final_weights()
    {
        using var dir = TestPaths.NewTempDir();
        var run = new RunDirectory(dir.File("mct"));
        Directory.CreateDirectory(run.Path);
        var request = new AffinityTrainRequest { CamDir = "c", DataRoot = "d", RunDirectory = "r", InitRun = run.Path, Steps = 1 };
        var missing = Assert.Throws<WeakSegException>(() => request.Resolve());
        Assert.Contains(run.FinalWeightsPath, missing.Message);
        Assert.Contains("trained weights of --init-run not found", missing.Message);

        TorchRuntime.Seed(3);
        using (var mct = new MctFormerModel(new MctFormerConfig { NumClasses = 3, CamLayers = 1, Backbone = AffinityTestData.TinyVit() }))
            mct.save(run.FinalWeightsPath);
        var config = (request with { Heads = 2 }).Resolve();
        Assert.Equal(AffinityTestData.TinyVit(classTokens: 3) with { DropPathRate = 0.1 }, config.Net.Backbone);
        Assert.Equal(run.FinalWeightsPath, config.InitWeights);

        var both = Assert.Throws<WeakSegException>(() => (request with { InitWeights = run.FinalWeightsPath }).Resolve());
        Assert.Contains("either --init-run or --init-weights", both.Message);
    }
}
