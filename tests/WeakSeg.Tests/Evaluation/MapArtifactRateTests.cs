using WeakSeg.Evaluation;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Evaluation;

public class MapArtifactRateTests
{
    // 2×3 image. Ground truth: background at pixels 0 and 3, class 1 at 1 and 2, ignored at 4, class 2 at 5.
    static readonly byte[] Gt = [0, 1, 1, 0, 255, 2];

    // Class 1: mass off the ignored pixel 0.5 + 1 + 0.5 + 0.2 + 0 = 2.2, on background 0.5 + 0.2 = 0.7.
    // Class 2: mass 0.1 + 0 + 0 + 0.3 + 1 = 1.4, on background 0.1 + 0.3 = 0.4. Class 3: all zero (left out).
    static readonly CamMaps Maps = new("a",
        [0.5f, 1f, 0.5f, 0.2f, 0.9f, 0f, /* class 2 */ 0.1f, 0f, 0f, 0.3f, 0.4f, 1f, /* class 3 */ 0f, 0f, 0f, 0f, 0.7f, 0f], [1, 2, 3], 2, 3);

    [Fact]
    public void Shares_and_rate_match_the_hand_computation()
    {
        var shares = MapArtifactRate.ImageShares(Maps, Gt).ToList();
        Assert.Equal([1, 2], shares.Select(s => s.Class));
        Assert.Equal(0.7 / 2.2, shares[0].Share, 6);
        Assert.Equal(0.4 / 1.4, shares[1].Share, 6);

        // A second image: class 2 entirely on background → share 1.
        var second = new CamMaps("b", [0.3f, 0.6f], [2], 1, 2);
        var r = MapArtifactRate.Run([(Maps, Gt), (second, new byte[] { 0, 0 })], numClasses: 4);
        Assert.Equal(3, r.Pairs);
        Assert.Equal((0.7 / 2.2 + 0.4 / 1.4 + 1.0) / 3, r.Rate, 6);
        Assert.True(double.IsNaN(r.ByClass[0]));
        Assert.Equal(0.7 / 2.2, r.ByClass[1], 6);
        Assert.Equal((0.4 / 1.4 + 1.0) / 2, r.ByClass[2], 6);
        Assert.True(double.IsNaN(r.ByClass[3]));
    }

    [Fact]
    public void Evaluate_reads_maps_and_masks_from_disk()
    {
        using var tmp = TestPaths.NewTempDir();
        var root = tmp.File("voc");
        var cams = tmp.File("cams");
        EvalTestData.WriteDataset(root, "train", ("a", EvalTestData.Mask(3, 2, Gt)));
        File.WriteAllLines(Path.Combine(root, "classes.txt"), ["background", "one", "two", "three"]);
        CamMapFile.Write(cams, "a", Maps.Maps, Maps.Classes, 2, 3);
        var (sweep, r) = CamThresholdSweep.EvaluateWithArtifactRate(cams, root, "train", new CamSweepOptions { MaxParallelism = 1 });
        Assert.Equal(2, r.Pairs);
        Assert.Equal((0.7 / 2.2 + 0.4 / 1.4) / 2, r.Rate, 6);
        Assert.Equal(1, sweep.NumImages);
    }

    [Fact]
    public void One_reading_gives_the_sweep_and_the_rate_of_separate_passes()
    {
        using var tmp = TestPaths.NewTempDir();
        var root = tmp.File("voc");
        var cams = tmp.File("cams");
        var random = new Random(7);
        var images = new List<(CamMaps Maps, byte[] Gt)>();
        for (int i = 0; i < 12; i++)
        {
            var gt = Enumerable.Range(0, 6).Select(_ => (byte)(random.Next(5) switch { 4 => 255, var c => c })).ToArray();
            var classes = new[] { 1 + i % 3 };
            var planes = Enumerable.Range(0, 6).Select(_ => (float)random.NextDouble()).ToArray();
            images.Add((new CamMaps("i" + i, planes, classes, 2, 3), gt));
        }
        EvalTestData.WriteDataset(root, "train", images.Select(x => (x.Maps.Name, EvalTestData.Mask(3, 2, x.Gt))).ToArray());
        File.WriteAllLines(Path.Combine(root, "classes.txt"), ["background", "one", "two", "three"]);
        foreach (var (maps, _) in images) CamMapFile.Write(cams, maps.Name, maps.Maps, maps.Classes, 2, 3);

        var thresholds = new[] { 0.1, 0.3, 0.5, 0.7 };
        var expectedRate = MapArtifactRate.Run(images.Select(x => (x.Maps, x.Gt)), 4);           // in memory, in split order
        var expectedSweep = CamThresholdSweep.Evaluate(cams, root, "train", new CamSweepOptions { Thresholds = thresholds, MaxParallelism = 1 });
        foreach (var parallelism in new[] { 1, 2, 4 })
        {
            var (sweep, rate) = CamThresholdSweep.EvaluateWithArtifactRate(cams, root, "train",
                new CamSweepOptions { Thresholds = thresholds, MaxParallelism = parallelism });
            // One worker sums in split order, as the in-memory rate: the same number. Several workers add their sums at the end.
            if (parallelism == 1) Assert.Equal(expectedRate.Rate, rate.Rate);
            else Assert.Equal(expectedRate.Rate, rate.Rate, 12);
            for (int c = 1; c < 4; c++) Assert.Equal(expectedRate.ByClass[c], rate.ByClass[c], 12);
            Assert.Equal(expectedRate.Pairs, rate.Pairs);
            Assert.Equal(expectedSweep.Metrics.Select(m => m.MeanIou), sweep.Metrics.Select(m => m.MeanIou));   // integer counts: exact
            Assert.Equal(expectedSweep.BestThreshold, sweep.BestThreshold);
        }
    }

    [Fact]
    public void A_size_mismatch_names_the_files()
    {
        var e = Assert.Throws<WeakSegException>(() => MapArtifactRate.ImageShares(Maps, [0, 1]).ToList());
        Assert.Contains("2 pixels", e.Message);
    }
}
