// The system calls of a format 2 trigger alone, over 1,000 instances (docs/BENCHMARKS.md):
// append + fdatasync of the instance's history, then its view.
// cc -O2 -o /tmp/floor scripts/syscall-floor.c && (cd /tmp && ./floor 0)
//   0: a fresh temp file renamed over the view; 1: the same, the temp in the instance's directory;
//   2: the view written into its spare in place and swapped in (RENAME_EXCHANGE), the history's
//      first blocks allocated at start (FALLOC_FL_KEEP_SIZE), as the engine does now
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
int cmp(const void*a,const void*b){double x=*(double*)a,y=*(double*)b;return x<y?-1:x>y;}
int main(int argc,char**argv){
  int mode=atoi(argv[1]); int n=1000; char buf[900]; memset(buf,'x',900); char p[256],t[256],h[256];
  mkdir("inst",0755);
  for(int i=0;i<n;i++){ sprintf(p,"inst/v%04d.json",i); int f=open(p,O_WRONLY|O_CREAT|O_TRUNC,0644); write(f,buf,900); close(f); sprintf(p,"inst/v%04d",i); mkdir(p,0755); sprintf(h,"inst/v%04d/h",i); f=open(h,O_WRONLY|O_CREAT,0644); if(mode==2) fallocate(f,FALLOC_FL_KEEP_SIZE,0,16384); close(f);
    if(mode==2){ sprintf(t,"inst/.v%04d.json.tmp",i); f=open(t,O_WRONLY|O_CREAT|O_TRUNC,0644); write(f,buf,900); close(f);} }
  sync();
  double *tt=malloc(n*sizeof(double)); double a0=now();
  for(int i=0;i<n;i++){
    double a=now();
    sprintf(h,"inst/v%04d/h",i); int f=open(h,O_WRONLY); pwrite(f,buf,700,0); fdatasync(f); close(f);
    if(mode==0) sprintf(t,"inst/.v%04d.json.tmp",i); else sprintf(t,"inst/v%04d/.view.tmp",i);
    sprintf(p,"inst/v%04d.json",i);
    if(mode==2){ f=open(t,O_WRONLY); pwrite(f,buf,888,0); close(f); renameat2(AT_FDCWD,t,AT_FDCWD,p,RENAME_EXCHANGE); }
    else { f=open(t,O_WRONLY|O_CREAT|O_TRUNC,0644); pwrite(f,buf,888,0); close(f); rename(t,p); }
    tt[i]=now()-a;
  }
  double el=now()-a0;
  qsort(tt,n,sizeof(double),cmp);
  printf("mode %d: %.0f/s p50 %.0f p99 %.0f us\n",mode,n/el*1e6,tt[n/2],tt[n*99/100]);
  system("rm -rf inst");
}
