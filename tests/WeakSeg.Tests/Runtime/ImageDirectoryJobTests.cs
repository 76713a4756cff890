using System.Collections.Concurrent;
using WeakSeg.Evaluation;
using WeakSeg.IO;
using WeakSeg.PseudoLabels;
using WeakSeg.Runtime;
using WeakSeg.Tests.Support;

namespace WeakSeg.Tests.Runtime;

/// <summary>The one skip-what-exists per-image job: an interrupted job, run again, processes only the images it had not finished, and
/// its outputs equal an uninterrupted job's.</summary>
[Collection("Torch")]
public class ImageDirectoryJobTests
{
    static readonly IReadOnlyList<string> Names = Enumerable.Range(0, 10).Select(i => $"img_{i:00}").ToList();

    /// <summary>A job writing NAME.txt (content from the name) atomically into <paramref name="dir"/>.</summary>
    static ImageDirectoryJob Job(string dir, int parallelism) => new()
    {
        Names = Names, IsDone = name => File.Exists(Path.Combine(dir, name + ".txt")), MaxParallelism = parallelism,
    };

    static Action<int> Writer(string dir, ConcurrentBag<string> calls, Action? afterEach = null) => i =>
    {
        calls.Add(Names[i]);
        AtomicFile.WriteAllText(Path.Combine(dir, Names[i] + ".txt"), $"{Names[i]}:{Names[i].Length * 7 + i}");
        afterEach?.Invoke();
    };

    static Dictionary<string, string> Contents(string dir) =>
        Directory.GetFiles(dir).ToDictionary(f => Path.GetFileName(f), File.ReadAllText);

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void A_job_cancelled_half_way_resumes_with_only_the_rest_and_ends_with_the_same_outputs(int parallelism)
    {
        using var dir = TestPaths.NewTempDir();
        var reference = dir.File("reference");
        Directory.CreateDirectory(reference);
        var all = Job(reference, parallelism).Run(Writer(reference, new ConcurrentBag<string>()));
        Assert.Equal(new ImageJobSummary(10, 10, 0), all);

        var outDir = dir.File("out");
        Directory.CreateDirectory(outDir);
        var first = new ConcurrentBag<string>();
        using (var cancel = new CancellationTokenSource())
        {
            int done = 0;
            Assert.ThrowsAny<OperationCanceledException>(() =>
                Job(outDir, parallelism).Run(Writer(outDir, first, () => { if (Interlocked.Increment(ref done) == 5) cancel.Cancel(); }), null, cancel.Token));
        }
        var finished = Directory.GetFiles(outDir, "*.txt").Select(f => Path.GetFileNameWithoutExtension(f)).ToHashSet();
        Assert.InRange(finished.Count, 5, 9);                     // stopped half way: the images in flight when it was cancelled finish
        Assert.Equal(finished, first.ToHashSet());
        Assert.Empty(Directory.GetFiles(outDir, "*.tmp"));        // atomic writes: no partial file

        var second = new ConcurrentBag<string>();
        var progress = new List<ProgressUpdate>();
        var resumed = Job(outDir, parallelism).Run(Writer(outDir, second), new SynchronousProgress(progress.Add));
        Assert.Equal(Names.Where(n => !finished.Contains(n)).Order(), second.Order());      // only the rest, each once
        Assert.Equal(new ImageJobSummary(10, 10 - finished.Count, finished.Count), resumed);
        Assert.Equal(Contents(reference), Contents(outDir));
        Assert.Equal(Enumerable.Range(0, 11).Select(d => (long)d), progress.Select(p => p.Done).Order());
        Assert.All(progress, p => Assert.Equal(10, p.Total));

        // Overwrite processes every image again.
        var third = new ConcurrentBag<string>();
        Assert.Equal(new ImageJobSummary(10, 10, 0), (Job(outDir, parallelism) with { Overwrite = true }).Run(Writer(outDir, third)));
        Assert.Equal(Names, third.Order());
    }

    [Fact]
    public void A_failing_image_surfaces_as_its_own_error_and_keeps_the_finished_outputs()
    {
        using var dir = TestPaths.NewTempDir();
        var calls = new ConcurrentBag<string>();
        var job = Job(dir.Path, 2);
        var e = Assert.Throws<WeakSegException>(() => job.Run(i =>
        {
            if (Names[i] == "img_07") throw new WeakSegException("img_07: broken");
            Writer(dir.Path, calls)(i);
        }));
        Assert.Equal("img_07: broken", e.Message);
        var again = new ConcurrentBag<string>();
        var summary = job.Run(Writer(dir.Path, again));
        Assert.Contains("img_07", again);
        Assert.Equal(calls.Count, summary.Skipped);
    }

    [Fact]
    public void Pseudo_labels_interrupted_half_way_resume_with_only_the_rest_and_equal_an_uninterrupted_run()
    {
        using var dir = TestPaths.NewTempDir();
        var camDir = dir.File("cams");
        var random = new Random(11);
        foreach (var name in Names)
        {
            const int h = 6, w = 5;
            var maps = Enumerable.Range(0, 2 * h * w).Select(_ => (float)random.NextDouble()).ToArray();
            CamMapFile.Write(camDir, name, maps, [1, 3], h, w);
        }
        var config = new PseudoLabelConfig { Threshold = 0.4f, MaxParallelism = 1 };
        var reference = PseudoLabelWriter.Run(camDir, dir.File("reference"), config);
        Assert.Equal(10, reference.Written);

        var outDir = dir.File("out");
        using (var cancel = new CancellationTokenSource())
            Assert.ThrowsAny<OperationCanceledException>(() => PseudoLabelWriter.Run(camDir, outDir, config,
                new SynchronousProgress(p => { if (p.Done == 4) cancel.Cancel(); }), cancellationToken: cancel.Token));
        Assert.Equal(4, Directory.GetFiles(outDir, "*.png").Length);

        var resumed = PseudoLabelWriter.Run(camDir, outDir, config);
        Assert.Equal((6, 4), (resumed.Written, resumed.Skipped));
        foreach (var name in Names)
            Assert.Equal(File.ReadAllBytes(Path.Combine(dir.File("reference"), name + ".png")), File.ReadAllBytes(Path.Combine(outDir, name + ".png")));
    }

    /// <summary>Reports on the calling thread (Progress&lt;T&gt; posts to the thread pool, too late for a test's assertions).</summary>
    sealed class SynchronousProgress(Action<ProgressUpdate> report) : IProgress<ProgressUpdate>
    {
        readonly object _gate = new();
        public void Report(ProgressUpdate value) { lock (_gate) report(value); }
    }
}
