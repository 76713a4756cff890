using System.Text.Json;
using WeakSeg.Data;
using WeakSeg.Evaluation;
using WeakSeg.PseudoLabels;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Evaluation;

public class CamThresholdSweepTests
{
    // 1×4 image, classes bg/1/2. Maps for classes 1 and 2: max score m = [0.2, 0.6, 0.3, 0.5], argmax class = [1, 1, 1, 2].
    static readonly CamMaps Maps = new("a", [0.2f, 0.6f, 0.3f, 0.1f, /* class 2 */ 0.1f, 0.2f, 0.1f, 0.5f], [1, 2], 1, 4);
    static readonly byte[] Gt = [0, 1, 1, 2];
    static readonly string[] Names = ["background", "one", "two"];

    [Fact]
    public void Default_range_is_0_to_0_6_in_steps_of_0_05()
    {
        var t = new CamSweepOptions().Thresholds;
        Assert.Equal(13, t.Count);
        Assert.Equal(0.15, t[3]); Assert.Equal(0.3, t[6]); Assert.Equal(0.6, t[12]);
        Assert.Equal([0.3, 0.4, 0.5], CamThresholdSweep.ParseThresholds("0.3:0.5:0.1"));
        Assert.Equal([0.1, 0.45], CamThresholdSweep.ParseThresholds("0.1, 0.45"));
        Assert.Contains("not a number", Assert.Throws<WeakSegException>(() => CamThresholdSweep.ParseThresholds("0:x:0.1")).Message);
    }

    [Fact]
    public void Hand_made_maps_give_known_miou_per_threshold_and_best_threshold()
    {
        double[] thresholds = [0.0, 0.1, 0.2, 0.25, 0.35, 0.55, 0.7];
        var r = CamThresholdSweep.Run([(Maps, Gt)], Names, new CamSweepOptions { Thresholds = thresholds });
        double[] expected =
        [
            (0 + 2.0 / 3 + 1) / 3,      // labels 1,1,1,2
            (0 + 2.0 / 3 + 1) / 3,
            1.0,                        // 0,1,1,2: m = 0.2 ties with t = 0.2 → background
            1.0,
            (0.5 + 0.5 + 1) / 3,        // 0,1,0,2
            (1.0 / 3 + 0.5 + 0) / 3,    // 0,1,0,0
            (0.25 + 0 + 0) / 3,         // all background
        ];
        for (int i = 0; i < thresholds.Length; i++) Assert.Equal(expected[i], r.Metrics[i].MeanIou, 12);
        Assert.Equal(2, r.BestIndex);          // first of the tied best
        Assert.Equal(0.2, r.BestThreshold);
        Assert.Equal(1.0, r.BestMeanIou);
        Assert.Equal(1, r.NumImages);
    }

    [Fact]
    public void One_pass_sweep_equals_scoring_camtolabel_output_per_threshold()
    {
        var rng = new Random(11);
        const int K = 6;
        var images = Enumerable.Range(0, 6).Select(n =>
        {
            int h = 5 + n, w = 7;
            var classes = Enumerable.Range(1, K - 1).OrderBy(_ => rng.Next()).Take(n % 3).ToArray(); // 0, 1 or 2 planes
            var maps = new float[classes.Length * h * w];
            for (int i = 0; i < maps.Length; i++) maps[i] = MathF.Round((float)rng.NextDouble(), 2); // rounding makes ties happen
            var gt = new byte[h * w];
            for (int i = 0; i < gt.Length; i++) gt[i] = rng.Next(8) == 0 ? (byte)255 : (byte)rng.Next(K);
            return (new CamMaps("i" + n, maps, classes, h, w), gt);
        }).ToArray();
        var opts = new CamSweepOptions();
        var names = Enumerable.Range(0, K).Select(c => "c" + c).ToArray();
        var sweep = CamThresholdSweep.Run(images, names, opts);
        for (int j = 0; j < opts.Thresholds.Count; j++)
        {
            var cm = new ConfusionMatrix(K);
            foreach (var (maps, gt) in images) cm.Add(gt, CamToLabel.Convert(maps, (float)opts.Thresholds[j]).Labels);
            var m = cm.ComputeMetrics();
            Assert.Equal(m.MeanIou, sweep.Metrics[j].MeanIou, 12);
            Assert.Equal(m.TruePositives, sweep.Metrics[j].TruePositives);
            Assert.Equal(m.PredictedPixels, sweep.Metrics[j].PredictedPixels);
        }
    }

    static void WriteSweepDataset(string root, string cams)
    {
        EvalTestData.WriteDataset(root, "train", ("a", EvalTestData.Mask(4, 1, Gt)), ("b", EvalTestData.Mask(2, 1, 2, 255)));
        File.WriteAllLines(Path.Combine(root, "classes.txt"), Names);
        CamMapFile.Write(cams, "a", Maps.Maps, Maps.Classes, 1, 4);
        CamMapFile.Write(cams, "b", [0.4f, 0.9f], [2], 1, 2); // pixel 0: gt 2, m 0.4; pixel 1 ignored
    }

    [Fact]
    public void Evaluate_reads_maps_and_masks_from_disk_and_the_cli_writes_json()
    {
        using var tmp = TestPaths.NewTempDir();
        var root = tmp.File("voc"); var cams = tmp.File("cams");
        WriteSweepDataset(root, cams);
        // Image b adds a class-2 pixel with m = 0.4: predicted 2 for t < 0.4, background above.
        var r = CamThresholdSweep.Evaluate(cams, root, "train", new CamSweepOptions { Thresholds = [0.25, 0.35, 0.45], MaxParallelism = 2 });
        Assert.Equal(2, r.NumImages);
        Assert.Equal(1.0, r.Metrics[0].MeanIou, 12);
        Assert.Equal((0.5 + 0.5 + 1) / 3, r.Metrics[1].MeanIou, 12);
        // t = 0.45: labels a = 0,1,0,2 and b = 0 → class0 TP1 GT1 Pred3: 1/3; class1 1/2; class2 TP1 GT2 Pred1: 1/2
        Assert.Equal((1.0 / 3 + 0.5 + 0.5) / 3, r.Metrics[2].MeanIou, 12);
        Assert.Equal(0.25, r.BestThreshold);

        var json = tmp.File("out/sweep.json");
        var (exit, stdout, stderr) = EvalTestData.RunCli("eval-cam", "--cams", cams, "--data", root, "--split", "train",
                                                          "--thresholds", "0.25:0.45:0.1", "--json", json);
        Assert.True(exit == 0, stderr);
        Assert.Contains("best mIoU", stdout);
        using var doc = JsonDocument.Parse(File.ReadAllText(json));
        var j = doc.RootElement;
        Assert.Equal(1.0, j.GetProperty("best_miou").GetDouble(), 12);
        Assert.Equal(0.25, j.GetProperty("best_threshold").GetDouble());
        Assert.Equal((0.5 + 0.5 + 1) / 3, j.GetProperty("miou_by_threshold").GetProperty("0.35").GetDouble(), 12);
        Assert.Equal(3, j.GetProperty("miou_by_threshold").EnumerateObject().Count());
        Assert.Equal(1.0, j.GetProperty("per_class").GetProperty("two").GetProperty("iou").GetDouble(), 12);
        Assert.Equal(2, j.GetProperty("num_images").GetInt32());
    }

    [Fact]
    public void Missing_map_and_size_mismatch_name_the_files()
    {
        using var tmp = TestPaths.NewTempDir();
        var root = tmp.File("voc"); var cams = tmp.File("cams");
        WriteSweepDataset(root, cams);
        CamMapFile.Write(cams, "b", [0.4f, 0.9f, 0.1f], [2], 1, 3);
        var e = Assert.Throws<WeakSegException>(() => CamThresholdSweep.Evaluate(cams, root, "train"));
        Assert.Contains(CamMapFile.MapPath(cams, "b"), e.Message);
        Assert.Contains(Path.Combine(root, "SegmentationClass", "b.png"), e.Message);
        Assert.Contains("3x1", e.Message); Assert.Contains("2x1", e.Message);

        File.Delete(CamMapFile.MapPath(cams, "b"));
        var (exit, _, stderr) = EvalTestData.RunCli("eval-cam", "--cams", cams, "--data", root, "--split", "train");
        Assert.Equal(1, exit);
        Assert.Contains("error: " + CamMapFile.MapPath(cams, "b") + ": map file not found", stderr);
    }
}
