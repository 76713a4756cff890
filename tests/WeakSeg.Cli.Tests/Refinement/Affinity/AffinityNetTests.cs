using TorchSharp;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Models.Vit;
using WeakSeg.Models.Weights;
using WeakSeg.Refinement.Affinity;
using WeakSeg.Runtime;
using WeakSeg.Tests.Data;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Refinement.Affinity;

[Collection("Torch")]
public class AffinityNetTests
{
    [Fact]
    public void Features_have_the_stride_and_affinities_are_exp_of_minus_mean_l1()
    {
        TorchRuntime.Seed(1);
        using var net = new AffinityNet(AffinityTestData.TinyNet());
        using var scope = torch.NewDisposeScope();
        var features = net.call(torch.randn(1, 3, 32, 48));
        Assert.Equal(new long[] { 1, 8, 8, 12 }, features.shape);                  // stride 4 = patch 8 / upsample 2
        var from = torch.tensor(new long[] { 0, 5 });
        var to = torch.tensor(new long[] { 1, 17 });
        var aff = AffinityNet.PairAffinities(features, from, to);
        var f = features.flatten(2)[0];                                            // [F, N]
        for (int p = 0; p < 2; p++)
        {
            long i = new long[] { 0, 5 }[p], j = new long[] { 1, 17 }[p];
            double mean = 0;
            for (int c = 0; c < 8; c++) mean += Math.Abs(f[c, i].item<float>() - f[c, j].item<float>()) / 8;
            Assert.Equal(Math.Exp(-mean), aff[0, p].item<float>(), 5);
        }
    }

    [Fact]
    public void A_few_training_steps_lower_the_psa_loss()
    {
        TorchRuntime.Seed(2);
        using var net = new AffinityNet(AffinityTestData.TinyNet());
        var trainable = new AffinityTrainable(net, numClasses: 3, radius: 3);
        using var scope = torch.NewDisposeScope();
        // Left half red (class 1), right half blue (background), a 255 column in between.
        var images = torch.zeros(2, 3, 32, 32);
        images[.., 0, .., ..16] = torch.tensor(1.5f);
        images[.., 2, .., 16..] = torch.tensor(1.5f);
        images = images + 0.3f * torch.randn(2, 3, 32, 32);
        var masks = torch.zeros(new long[] { 2, 32, 32 }, dtype: ScalarType.Int64);
        masks[.., .., ..16] = torch.tensor(1L);
        masks[.., .., 14..18] = torch.tensor(255L);
        var optimizer = torch.optim.Adam(net.parameters(), 1e-2);
        float first = 0, last = 0;
        for (int step = 0; step < 25; step++)
        {
            using var stepScope = torch.NewDisposeScope();
            optimizer.zero_grad();
            var loss = trainable.Loss(images, masks);
            loss.Total.backward();
            optimizer.step();
            if (step == 0) first = loss.Total.item<float>();
            last = loss.Total.item<float>();
            Assert.True(loss.BackgroundPositive.item<float>() > 0 && loss.ForegroundPositive.item<float>() > 0 && loss.Negative.item<float>() > 0);
        }
        Assert.True(last < 0.6 * first, $"loss {first} → {last}");
    }

    [Fact]
    public void Backbone_loads_from_an_mctformer_run_file_with_its_shape_and_reports_the_head_as_ignored()
    {
        using var dir = TestPaths.NewTempDir();
        TorchRuntime.Seed(3);
        var mct = new MctFormerModel(new MctFormerConfig { NumClasses = 3, CamLayers = 1, Backbone = AffinityTestData.TinyVit() });
        var path = dir.File("model-final.bin");
        mct.save(path);
        var shape = BackboneWeights.InferBackbone(path, numHeads: 2);
        Assert.Equal((16, 8, 2, 3, 4.0, 32, true), (shape.EmbedDim, shape.PatchSize, shape.Depth, shape.NumClassTokens, shape.MlpRatio, shape.ImageSize, shape.QkvBias));
        using var net = new AffinityNet(AffinityTestData.TinyNet() with { Backbone = shape with { DropPathRate = 0 } });
        var report = BackboneWeights.Load(net.Backbone, path);
        Assert.Empty(report.Missing);
        Assert.Equal(new[] { "head.bias", "head.weight" }, report.Unexpected.Order(StringComparer.Ordinal));
        var source = mct.state_dict();
        foreach (var (key, value) in net.Backbone.state_dict())
            Assert.True(value.allclose(source[key], 0, 0), key);

        using var wrong = new AffinityNet(AffinityTestData.TinyNet(classTokens: 1));
        var e = Assert.Throws<WeakSegException>(() => BackboneWeights.Load(wrong.Backbone, path));
        Assert.Contains(path, e.Message);
        Assert.Contains("cls_token", e.Message);
        File.WriteAllBytes(dir.File("junk.bin"), [200, 1, 2]);
        Assert.Contains("not a TorchSharp weights file", Assert.Throws<WeakSegException>(() => BackboneWeights.ReadShapes(dir.File("junk.bin"))).Message);
    }

    /// <summary>Maps from ground truth: 0.8 on the class, 0.2 elsewhere, with ±0.15 noise.</summary>
    internal static void WriteMapsFromMasks(string root, string camDir, int seed)
    {
        var rng = new Random(seed);
        var layout = new VocLayout(root);
        foreach (var name in layout.ReadSplit("train"))
        {
            var gt = LabelPng.Read(layout.MaskPath(name)!);
            var classes = gt.ForegroundClasses();
            int n = gt.Width * gt.Height;
            var maps = new float[classes.Length * n];
            for (int k = 0; k < classes.Length; k++)
                for (int i = 0; i < n; i++)
                    maps[k * n + i] = Math.Clamp((gt.Labels[i] == classes[k] ? 0.8f : 0.2f) + (float)(rng.NextDouble() - 0.5) * 0.3f, 0f, 1f);
            CamMapFile.Write(camDir, name, maps, classes, gt.Height, gt.Width);
        }
    }

    [Fact]
    public void Cli_trains_infers_and_refines_pseudo_labels_on_a_tiny_dataset()
    {
        using var dir = TestPaths.NewTempDir();
        var root = VocTestData.CreateBlocksDataset(dir.File("voc"), 6, 32, 32);
        var cams = dir.File("cams");
        WriteMapsFromMasks(root, cams, 5);
        var configPath = dir.File("aff.json");
        File.WriteAllText(configPath, AffinityRun.ToJson(new AffinityRunConfig { Net = AffinityTestData.TinyNet(), Radius = 3 }));
        var run = dir.File("run");
        Assert.Equal(0, WeakSeg.Cli.Program.Run(["affinity", "train", "--cams", cams, "--data", root, "--out", run, "--config", configPath,
                                                "--steps", "3", "--batch-size", "2", "--crop-size", "32", "--threads", "2"]));
        Assert.True(File.Exists(new WeakSeg.Training.RunDirectory(run).FinalWeightsPath));
        Assert.Equal(6, Directory.GetFiles(AffinityRun.LabelDir(run), "*.png").Length);
        var stored = AffinityRun.ReadConfig(run);
        Assert.Equal((16, 3, 3L, 32), (stored.Net.Backbone.EmbedDim, stored.Radius, stored.Trainer.Steps, stored.CropSize));

        var rw = dir.File("rw");
        Assert.Equal(0, WeakSeg.Cli.Program.Run(["affinity", "infer", "--run", run, "--cams", cams, "--data", root, "--out", rw, "--logt", "2"]));
        foreach (var name in new VocLayout(root).ReadSplit("train"))
        {
            var refined = CamMapFile.Read(rw, name);
            Assert.Equal(CamMapFile.Read(cams, name).Classes, refined.Classes);
        }

        foreach (var (outName, extra) in new[] { ("pl-crf", new[] { "--crf" }), ("pl-rw", new[] { "--affinity", run, "--logt", "2" }), ("pl-both", new[] { "--affinity", run, "--crf" }) })
        {
            var outDir = dir.File(outName);
            Assert.Equal(0, WeakSeg.Cli.Program.Run(["pseudo", "--cams", cams, "--out", outDir, "--threshold", "0.5", "--data", root, .. extra]));
            Assert.Equal(6, Directory.GetFiles(outDir, "*.png").Length);
        }
        Assert.Equal(1, WeakSeg.Cli.Program.Run(["pseudo", "--cams", cams, "--out", dir.File("x"), "--crf"]));   // --data missing
        Assert.Equal(0, WeakSeg.Cli.Program.Run(["eval-cam", "--cams", cams, "--data", root, "--thresholds", "0.3,0.5", "--compare-crf", "--rw-cams", rw]));
    }
}
