// Floors over 1,000 instances, in one run (docs/BENCHMARKS.md, thirteenth and fourteenth
// sessions): the system calls alone of a format 2 trigger (lock, read the view, stat the history,
// append + fdatasync, write the spare, RENAME_EXCHANGE); the same with the fdatasync moved to a
// record of the instance rewritten in place (the history appended unsynced); the same with the
// record in one file for the whole store (written before, so its extents are not unwritten);
// and SQLite (WAL, synchronous=FULL) doing a read-modify-write of a row per trigger through its
// C API: no JSON on any side. Count the device requests of each with
// `perf stat -e block:block_rq_issue` or `perf record -a -e block:block_rq_issue`.
// cc -O2 -o /tmp/commit-floor scripts/commit-floor.c -lsqlite3 && (cd /tmp && ./commit-floor)
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sqlite3.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
int n=1000; char buf[4096];
void setup(){ char p[256]; mkdir("i",0755);
  for(int i=0;i<n;i++){ sprintf(p,"i/%04d",i); mkdir(p,0755);
    sprintf(p,"i/%04d/h",i); int f=open(p,O_RDWR|O_CREAT,0644); fallocate(f,FALLOC_FL_KEEP_SIZE,0,16384); close(f);
    sprintf(p,"i/%04d/c",i); f=open(p,O_RDWR|O_CREAT,0644); write(f,buf,4096); close(f);
    sprintf(p,"i/%04d/lock",i); f=open(p,O_RDWR|O_CREAT,0644); close(f);
    sprintf(p,"i/%04d.json",i); f=open(p,O_RDWR|O_CREAT,0644); write(f,buf,900); close(f);
    sprintf(p,"i/.%04d.json.tmp",i); f=open(p,O_RDWR|O_CREAT,0644); write(f,buf,900); close(f); }
  sync(); }
double files(int inplace){ char p[256],t[256]; char rb[4096]; struct stat st;
  double a0=now();
  for(int i=0;i<n;i++){
    sprintf(p,"i/%04d/lock",i); int l=open(p,O_RDWR); flock(l,LOCK_EX);
    sprintf(p,"i/%04d.json",i); int v=open(p,O_RDONLY); read(v,rb,4096); close(v);
    sprintf(p,"i/%04d/h",i); stat(p,&st);
    int h=open(p,O_WRONLY|O_APPEND); write(h,buf,700);
    if(inplace==2){ static int lg=-1; static int slot=0;
      if(lg<0){ static char z[4096*64]; lg=open("i/commit.log",O_RDWR|O_CREAT,0644); for(int q=0;q<16;q++) write(lg,z,sizeof z); fdatasync(lg); }
      pwrite(lg,buf,1024,(off_t)(slot++%1024)*4096); fdatasync(lg); }
    else if(inplace){ sprintf(p,"i/%04d/c",i); int c=open(p,O_WRONLY); pwrite(c,buf,1500,0); fdatasync(c); close(c); }
    else fdatasync(h);
    close(h);
    sprintf(t,"i/.%04d.json.tmp",i); sprintf(p,"i/%04d.json",i);
    int f=open(t,O_WRONLY); pwrite(f,buf,900,0); close(f); renameat2(AT_FDCWD,t,AT_FDCWD,p,RENAME_EXCHANGE);
    flock(l,LOCK_UN); close(l);
  }
  return n/(now()-a0)*1e6; }
double lite(){ sqlite3*db; sqlite3_open("i/peer.sqlite",&db); sqlite3_exec(db,"PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE IF NOT EXISTS s(id INTEGER PRIMARY KEY, state TEXT); CREATE TABLE IF NOT EXISTS h(id INTEGER, pos INTEGER, entry TEXT, PRIMARY KEY(id,pos));",0,0,0);
  sqlite3_stmt *sel,*up,*ins; sqlite3_prepare_v2(db,"SELECT state FROM s WHERE id=?",-1,&sel,0); sqlite3_prepare_v2(db,"UPDATE s SET state=? WHERE id=?",-1,&up,0); sqlite3_prepare_v2(db,"INSERT OR REPLACE INTO h VALUES(?,?,?)",-1,&ins,0);
  sqlite3_exec(db,"BEGIN",0,0,0); for(int i=0;i<n;i++){ char q[1200]; sprintf(q,"INSERT OR REPLACE INTO s VALUES(%d,'%.*s')",i,900,buf); sqlite3_exec(db,q,0,0,0);} sqlite3_exec(db,"COMMIT",0,0,0); sync();
  double a0=now();
  for(int i=0;i<n;i++){ sqlite3_exec(db,"BEGIN IMMEDIATE",0,0,0);
    sqlite3_bind_int(sel,1,i); sqlite3_step(sel); sqlite3_reset(sel);
    sqlite3_bind_int(ins,1,i); sqlite3_bind_int(ins,2,1); sqlite3_bind_text(ins,3,buf,200,SQLITE_STATIC); sqlite3_step(ins); sqlite3_reset(ins);
    sqlite3_bind_text(up,1,buf,900,SQLITE_STATIC); sqlite3_bind_int(up,2,i); sqlite3_step(up); sqlite3_reset(up);
    sqlite3_exec(db,"COMMIT",0,0,0); }
  double r=n/(now()-a0)*1e6; sqlite3_close(db); return r; }
int main(){ memset(buf,'x',4096); setup();
  for(int r=0;r<3;r++){ double a=files(0); double b=files(1); double g=files(2); double c=lite(); printf("append+fdatasync %.0f/s  in-place record %.0f/s  store-wide record %.0f/s  sqlite %.0f/s\n",a,b,g,c); }
  system("rm -rf i"); }
